"""Keeping every video: copy a completed generation's output into our storage.

The webhook schedules a copy as soon as a generation completes (a background task locally, a
spawned function on Modal) so the reply to Replicate is never held up; the sweeper retries the
copies that failed while the provider still has the file (it deletes outputs after an hour).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass

import httpx

from shared.core.domain import Generation
from shared.core.errors import AppError
from shared.db.rpc import Rpc
from shared.flows.outputs import OutputCopyError, copy_output
from shared.storage.supabase import Storage, StorageUnavailable

log = logging.getLogger(__name__)

# Replicate keeps API outputs for an hour; past that a retry cannot succeed.
PROVIDER_RETENTION_S = 3600


def video_path(gen: Generation) -> str:
    return f"{gen.user_id}/videos/{gen.id}.mp4"


@dataclass
class Keeper:
    rpc: Rpc
    storage: Storage
    client: httpx.AsyncClient
    max_bytes: int
    timeout_s: float
    signed_url_ttl_s: int = 3600

    async def keep(self, gen: Generation) -> bool:
        """Copy the video and record where; False (with the reason recorded) when it failed."""
        if gen.status != "completed" or gen.video_path is not None or gen.video_url is None:
            return gen.video_path is not None
        path = video_path(gen)
        extra = {"generation_id": str(gen.id)}
        try:
            size = await copy_output(
                gen.video_url,
                self.storage,
                path,
                client=self.client,
                max_bytes=self.max_bytes,
                timeout_s=self.timeout_s,
            )
        except OutputCopyError as exc:
            log.warning("video copy failed: %s", exc.detail, extra=extra)
            await self.rpc.record_copy_failure(gen.id, exc.detail, retryable=exc.retryable)
            return False
        except StorageUnavailable as exc:  # ours; retried unless it cannot get better (too big)
            log.warning("video copy failed: %s", exc.detail, extra=extra)
            await self.rpc.record_copy_failure(gen.id, exc.detail, retryable=exc.retryable)
            return False
        except AppError as exc:  # other trouble on our side: worth another try
            log.warning("video copy failed: %s", exc.detail, extra=extra)
            await self.rpc.record_copy_failure(gen.id, exc.detail, retryable=True)
            return False
        await self.rpc.set_video_path(gen.id, path)
        log.info("video kept (%d bytes)", size, extra=extra)
        return True

    async def keep_by_id(self, user_id: uuid.UUID, generation_id: uuid.UUID) -> bool:
        """For a spawned job that only carries the ids."""
        return await self.keep(await self.rpc.get_generation(user_id, generation_id))

    async def view_url(self, gen: Generation) -> str | None:
        """Where the owner watches it: our copy (signed) once kept, else the provider's URL."""
        if gen.video_path is None:
            return gen.video_url
        return await self.storage.signed_url(gen.video_path, self.signed_url_ttl_s)

    async def retry_pending(self, *, limit: int = 50, retry_after_s: int = 60) -> dict[str, int]:
        """The sweeper's part: copies that failed or never ran, while the file still exists."""
        pending = await self.rpc.claim_pending_copies(
            limit=limit,
            retry_after_s=retry_after_s,
            max_age_s=PROVIDER_RETENTION_S,
            max_attempts=5,
        )
        results = await asyncio.gather(*(self.keep(gen) for gen in pending))
        kept = sum(results)
        return {"copies_kept": kept, "copies_failed": len(results) - kept}


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
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)


KeepScheduler = Callable[[Generation], Awaitable[None]]
