"""shared.flows.scheduling: the in-process copy scheduler lets copies finish at shutdown, and
cancels (rather than abandons) those still running when its wait is over."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from shared.core.domain import Generation
from shared.flows.scheduling import BackgroundScheduler


def completed(prompt: str) -> Generation:
    now = datetime.now(UTC)
    return Generation(
        id=uuid.uuid4(), user_id=uuid.uuid4(), kind="t2v", model="t2v-14B", resolution="480p",
        prompt=prompt, cost=10, status="completed", created_at=now, updated_at=now,
    )  # fmt: skip


async def test_drain_waits_for_copies_and_cancels_those_still_running() -> None:
    finished: list[str] = []
    cancelled: list[str] = []
    quick_started = asyncio.Event()

    async def keep(gen: Generation) -> bool:
        try:
            if gen.prompt == "quick":
                quick_started.set()
                await asyncio.sleep(0)
            else:
                await asyncio.Event().wait()  # a copy that would outlive the shutdown
        except asyncio.CancelledError:
            cancelled.append(gen.prompt)
            raise
        finished.append(gen.prompt)
        return True

    scheduler = BackgroundScheduler(keep)
    await scheduler(completed("quick"))
    await scheduler(completed("slow"))
    await quick_started.wait()
    await scheduler.drain(timeout_s=0.05)
    assert finished == ["quick"]
    assert cancelled == ["slow"]
