"""Keeping every video: copy a completed generation's output into our storage.

The webhook schedules a copy as soon as a generation completes (a background task locally, a
spawned function on Modal) so the reply to Replicate is never held up; the sweeper retries the
copies that failed while the provider still has the file (it deletes outputs after an hour).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.core.domain import Generation
from shared.core.errors import AppError
from shared.db.port import Database
from shared.flows.outputs import OutputCopyError, copy_output
from shared.storage.port import Storage

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

# Replicate keeps API outputs for an hour; past that a retry cannot succeed.
PROVIDER_RETENTION_S = 3600


def video_path(gen: Generation) -> str:
    return f"{gen.user_id}/videos/{gen.id}.mp4"


@dataclass(frozen=True)
class Keeper:
    rpc: Database
    storage: Storage
    client: httpx.AsyncClient
    max_bytes: int
    timeout_s: float

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
        except AppError as exc:  # storage trouble: ours, worth another try
            log.warning("video copy failed: %s", exc.detail, extra=extra)
            await self.rpc.record_copy_failure(gen.id, exc.detail, retryable=True)
            return False
        await self.rpc.set_video_path(gen.id, path)
        log.info("video kept (%d bytes)", size, extra=extra)
        return True

    async def keep_by_id(self, user_id: uuid.UUID, generation_id: uuid.UUID) -> bool:
        """For a spawned job that only carries the ids."""
        return await self.keep(await self.rpc.get_generation(user_id, generation_id))

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
