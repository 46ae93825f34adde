"""A token bucket for calls to the provider (Replicate allows 3000 non-create calls a minute).

Shared by every concurrent task of one process; `acquire()` waits until a token is free, so
the long-run rate never exceeds `rate_per_s` and bursts never exceed `burst`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class RateLimiter:
    def __init__(
        self,
        rate_per_s: float,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = clock()
        self._lock: asyncio.Lock | None = None

    async def acquire(self) -> None:
        # Created lazily: a lock belongs to the event loop that first uses it.
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            while True:
                now = self._clock()
                self._tokens = min(
                    float(self.burst), self._tokens + (now - self._updated) * self.rate_per_s
                )
                self._updated = now
                # The tolerance stops float rounding from turning into endless tiny sleeps.
                if self._tokens >= 1 - 1e-9:
                    self._tokens = max(0.0, self._tokens - 1)
                    return
                await self._sleep((1 - self._tokens) / self.rate_per_s)
