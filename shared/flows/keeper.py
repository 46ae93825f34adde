"""Keeping every video: copy a completed generation's output into our storage.

The webhook schedules a copy as soon as a generation completes (a background task locally, a
spawned function on Modal) so the reply to Replicate is never held up; the sweeper retries the
copies that failed while the provider still has the file (it deletes outputs after an hour).

Every copy first claims its row (claim_copy, or the sweeper's claim_pending_copies) for longer
than a copy may take, so two copies of one video never stream at once; a failed copy releases
the claim until its retry delay has passed. The sweeper is the one that retries (the Modal copy
function is not retried: a failure is recorded, not raised), with a bounded number of copies at
once.
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
    retry_after_s: int = 60
    max_attempts: int = 5
    concurrency: int = 4

    @property
    def lease_s(self) -> int:
        """How long a claim holds its row: past the copy's own time limit."""
        return int(self.timeout_s) + 60

    async def keep(self, gen: Generation, *, claimed: bool = False) -> bool:
        """Copy the video and record where; False (with the reason recorded) when it failed,
        or when it needs no copy or another copy of it is under way. `claimed`: the caller
        already holds the row's claim (the sweeper)."""
        if gen.status != "completed" or gen.video_path is not None or gen.video_url is None:
            return gen.video_path is not None
        if not claimed:
            gen, won = await self.rpc.claim_copy(
                gen.id, lease_s=self.lease_s, max_attempts=self.max_attempts
            )
            if not won:
                return gen.video_path is not None
        url = gen.video_url
        if url is None:  # the claim only succeeds for a row with an output URL
            return False
        path = video_path(gen)
        extra = {"generation_id": str(gen.id)}
        try:
            size = await copy_output(
                url,
                self.storage,
                path,
                client=self.client,
                max_bytes=self.max_bytes,
                timeout_s=self.timeout_s,
            )
        except OutputCopyError as exc:
            log.warning("video copy failed: %s", exc.detail, extra=extra)
            await self.rpc.record_copy_failure(
                gen.id, exc.detail, retryable=exc.retryable, retry_after_s=self.retry_after_s
            )
            return False
        except AppError as exc:  # storage trouble: ours, worth another try
            log.warning("video copy failed: %s", exc.detail, extra=extra)
            await self.rpc.record_copy_failure(
                gen.id, exc.detail, retryable=True, retry_after_s=self.retry_after_s
            )
            return False
        await self.rpc.set_video_path(gen.id, path)
        log.info("video kept (%d bytes)", size, extra=extra)
        return True

    async def keep_by_id(self, user_id: uuid.UUID, generation_id: uuid.UUID) -> bool:
        """For a spawned job that only carries the ids."""
        return await self.keep(await self.rpc.get_generation(user_id, generation_id))

    async def retry_pending(self, *, limit: int = 50) -> dict[str, int]:
        """The sweeper's part: copies that failed or never ran, while the file still exists,
        at most `concurrency` at once."""
        pending = await self.rpc.claim_pending_copies(
            limit=limit,
            retry_after_s=self.retry_after_s,
            max_age_s=PROVIDER_RETENTION_S,
            max_attempts=self.max_attempts,
            lease_s=self.lease_s,
        )
        gate = asyncio.Semaphore(self.concurrency)

        async def bounded(gen: Generation) -> bool:
            async with gate:
                return await self.keep(gen, claimed=True)

        results = await asyncio.gather(*(bounded(gen) for gen in pending))
        kept = sum(results)
        return {"copies_kept": kept, "copies_failed": len(results) - kept}
