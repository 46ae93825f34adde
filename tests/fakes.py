"""Small fakes of our ports, for injecting faults while our own database stays real.

`DatabaseProxy` forwards every call of the database port to the real one (an `Rpc` over the
test's PostgreSQL); a fault is a subclass that overrides the one call it breaks.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from shared.core.domain import Generation, JsonObject
from shared.core.errors import AppError, JsonValue
from shared.db.port import Database
from shared.db.rpc import Applied, Created, Update


class DatabaseProxy:
    def __init__(self, inner: Database) -> None:
        self.inner = inner

    async def create_generation(
        self,
        *,
        user_id: uuid.UUID,
        kind: str,
        model: str,
        resolution: str,
        prompt: str,
        cost: int,
        negative_prompt: str | None = None,
        params: JsonObject | None = None,
        input_image_path: str | None = None,
        input_digest: str | None = None,
        idempotency_key: str | None = None,
        max_active: int = 3,
        retry_of: uuid.UUID | None = None,
    ) -> Created:
        return await self.inner.create_generation(
            user_id=user_id, kind=kind, model=model, resolution=resolution, prompt=prompt,
            cost=cost, negative_prompt=negative_prompt, params=params,
            input_image_path=input_image_path, input_digest=input_digest,
            idempotency_key=idempotency_key, max_active=max_active, retry_of=retry_of,
        )  # fmt: skip

    async def mark_submitted(self, generation_id: uuid.UUID, job_id: str) -> Applied:
        return await self.inner.mark_submitted(generation_id, job_id)

    async def apply_prediction(
        self,
        generation_id: uuid.UUID,
        status: str,
        *,
        job_id: str | None = None,
        progress: int | None = None,
        video_url: str | None = None,
        error: str | None = None,
    ) -> Applied:
        return await self.inner.apply_prediction(
            generation_id, status, job_id=job_id, progress=progress, video_url=video_url,
            error=error,
        )  # fmt: skip

    async def apply_update(self, update: Update) -> Applied:
        return await self.inner.apply_update(update)

    async def apply_predictions(self, updates: Sequence[Update]) -> list[Applied | AppError]:
        return await self.inner.apply_predictions(updates)

    async def fail_submission(self, generation_id: uuid.UUID, error: str) -> Applied:
        return await self.inner.fail_submission(generation_id, error)

    async def request_cancel(self, user_id: uuid.UUID, generation_id: uuid.UUID) -> Applied:
        return await self.inner.request_cancel(user_id, generation_id)

    async def claim_stale_generations(self, *, limit: int, stale_after_s: int) -> list[Generation]:
        return await self.inner.claim_stale_generations(limit=limit, stale_after_s=stale_after_s)

    async def set_video_path(self, generation_id: uuid.UUID, video_path: str) -> Applied:
        return await self.inner.set_video_path(generation_id, video_path)

    async def claim_pending_copies(
        self, *, limit: int, retry_after_s: int, max_age_s: int, max_attempts: int
    ) -> list[Generation]:
        return await self.inner.claim_pending_copies(
            limit=limit, retry_after_s=retry_after_s, max_age_s=max_age_s,
            max_attempts=max_attempts,
        )  # fmt: skip

    async def record_copy_failure(
        self, generation_id: uuid.UUID, error: str, *, retryable: bool
    ) -> None:
        await self.inner.record_copy_failure(generation_id, error, retryable=retryable)

    async def get_generation(self, user_id: uuid.UUID, generation_id: uuid.UUID) -> Generation:
        return await self.inner.get_generation(user_id, generation_id)

    async def read_generation(
        self, user_id: uuid.UUID, generation_id: uuid.UUID, *, poll_after_s: int, max_polls: int
    ) -> tuple[Generation, bool]:
        return await self.inner.read_generation(
            user_id, generation_id, poll_after_s=poll_after_s, max_polls=max_polls
        )

    async def list_generations(
        self, user_id: uuid.UUID, *, limit: int, before: tuple[datetime, uuid.UUID] | None = None
    ) -> list[Generation]:
        return await self.inner.list_generations(user_id, limit=limit, before=before)

    async def get_credits(self, user_id: uuid.UUID, *, limit: int) -> tuple[int, list[JsonValue]]:
        return await self.inner.get_credits(user_id, limit=limit)

    async def aclose(self) -> None:
        await self.inner.aclose()
