"""The token bucket, on a fake clock: never faster than its rate, bursts bounded."""

from __future__ import annotations

import asyncio

import pytest

from shared.core.ratelimit import RateLimiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def test_rate_is_never_exceeded() -> None:
    t = FakeTime()
    limiter = RateLimiter(50, burst=5, clock=t.clock, sleep=t.sleep)
    stamps = []
    for _ in range(505):
        await limiter.acquire()
        stamps.append(t.now)
    # 5 free tokens at once, then one every 1/50 s: 500 more take 10 s.
    assert stamps[4] == 0.0
    assert stamps[-1] == pytest.approx(10.0)
    for i in range(len(stamps) - 50):
        assert stamps[i + 50] - stamps[i] >= 50 / 50 - 5 / 50 - 1e-9


async def test_concurrent_acquirers_share_the_bucket() -> None:
    t = FakeTime()
    limiter = RateLimiter(10, burst=1, clock=t.clock, sleep=t.sleep)
    await asyncio.gather(*(limiter.acquire() for _ in range(21)))
    assert t.now == pytest.approx(2.0)


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="rate_per_s"):
        RateLimiter(0)
