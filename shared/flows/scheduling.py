"""How a completed generation's video copy gets started without holding up the webhook's reply:
the CopyScheduler port, and its in-process adapter. (On Modal, modal_app spawns a function.)

Apart from the keeper so that a webhook that only schedules never imports the copier.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Protocol

from shared.core.domain import Generation


class BackgroundScheduler:
    """Runs keep() after the response, in this process; remembers its tasks so shutdown can
    wait for them and the event loop never drops one half-way."""

    def __init__(self, keep: Callable[[Generation], Coroutine[None, None, bool]]) -> None:
        self._keep = keep
        self._tasks: set[asyncio.Task[bool]] = set()

    async def __call__(self, gen: Generation) -> None:
        task = asyncio.create_task(self._keep(gen))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Wait for the copies under way; cancel those still running after `timeout_s`, before
        their clients close under them (each leaves its claim, which expires, and the sweep
        copies that video again)."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


class CopyScheduler(Protocol):
    """Starts keeping a completed generation's video without waiting for the copy: a
    BackgroundScheduler in this process, or (on Modal) a spawned function."""

    async def __call__(self, gen: Generation) -> None: ...
