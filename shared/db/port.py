"""The database port: the SQL-function calls the flows make, as a Protocol.

`shared.db.rpc.Rpc` is the production adapter (over either transport). Tests that inject a
fault wrap the real Rpc in a small fake of this port, so our own database stays real.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from shared.core.domain import Generation, NewGeneration
from shared.core.errors import AppError, JsonValue
from shared.db.rpc import Applied, Created, Read, Update


class Database(Protocol):
    """One method per SQL function the flows and endpoints call; each is one atomic call."""

    async def create_generation(
        self,
        new: NewGeneration,
        *,
        max_active: int,
        rate_per_minute: int | None,
        daily_budget_usd: float | None,
    ) -> Created:
        """Every limit is the caller's setting (None: no limit), never a default of the port."""
        ...

    async def mark_submitted(self, generation_id: uuid.UUID, job_id: str) -> Applied: ...

    async def apply_update(self, update: Update) -> Applied:
        """apply_prediction for one `Update` (Rpc.apply_prediction takes its fields one by one)."""
        ...

    async def apply_predictions(self, updates: Sequence[Update]) -> list[Applied | AppError]: ...

    async def fail_submission(self, generation_id: uuid.UUID, error: str) -> Applied: ...

    async def request_cancel(self, user_id: uuid.UUID, generation_id: uuid.UUID) -> Applied: ...

    async def claim_stale_generations(
        self, *, limit: int, stale_after_s: int
    ) -> list[Generation]: ...

    async def set_video_path(self, generation_id: uuid.UUID, video_path: str) -> Applied: ...

    async def claim_pending_copies(
        self, *, limit: int, retry_after_s: int, max_age_s: int, max_attempts: int, lease_s: int
    ) -> list[Generation]: ...

    async def claim_copy(
        self, generation_id: uuid.UUID, *, lease_s: int, max_attempts: int
    ) -> tuple[Generation, bool]: ...

    async def read_generations(
        self, reads: Sequence[Read], *, poll_after_s: int, max_polls: int
    ) -> list[tuple[Generation, bool] | AppError]: ...

    async def record_copy_failure(
        self, generation_id: uuid.UUID, error: str, *, retryable: bool, retry_after_s: int
    ) -> None: ...

    async def get_generation(self, user_id: uuid.UUID, generation_id: uuid.UUID) -> Generation: ...

    async def read_generation(
        self, user_id: uuid.UUID, generation_id: uuid.UUID, *, poll_after_s: int, max_polls: int
    ) -> tuple[Generation, bool]: ...

    async def list_generations(
        self, user_id: uuid.UUID, *, limit: int, before: tuple[datetime, uuid.UUID] | None = None
    ) -> list[Generation]: ...

    async def get_credits(
        self, user_id: uuid.UUID, *, limit: int
    ) -> tuple[int, list[JsonValue]]: ...

    async def aclose(self) -> None: ...
