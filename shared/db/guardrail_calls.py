"""The guardrails' SQL functions (issue 14): deletion, retention, configuration, the operator's
numbers. A mixin of `shared.db.rpc.Rpc`, kept apart so that module stays small."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.core.domain import Generation, JsonObject
from shared.core.errors import AppError, JsonValue
from shared.db.calls import SqlCalls, row_generation, row_int, sql_args


@dataclass(frozen=True)
class ForgottenAccount:
    """What delete_account leaves to the caller: files to remove, predictions to cancel, and
    the generations whose media to release once the files are gone."""

    paths: list[str]
    job_ids: list[str]
    generation_ids: list[uuid.UUID]


class GuardrailCalls(SqlCalls):
    async def delete_generation(
        self, user_id: uuid.UUID, generation_id: uuid.UUID
    ) -> tuple[Generation, list[str]]:
        """Tombstone the owner's finished generation; the stored files to remove."""
        row = await self._one("delete_generation", **sql_args(locals()))
        return row_generation(row), _strings(row.get("paths"))

    async def delete_account(self, user_id: uuid.UUID) -> ForgottenAccount:
        """Forget the user's personal data; what is left to do outside the database."""
        row = await self._one("delete_account", **sql_args(locals()))
        return ForgottenAccount(
            paths=_strings(row.get("paths")),
            job_ids=_strings(row.get("job_ids")),
            generation_ids=[uuid.UUID(i) for i in _strings(row.get("generation_ids"))],
        )

    async def claim_expired_media(
        self, *, retention_days: int, limit: int
    ) -> list[tuple[Generation, list[str]]]:
        """Deleted or past-retention generations still holding media, with the files to remove."""
        rows = await self.transport.call("claim_expired_media", sql_args(locals()))
        return [(row_generation(row), _strings(row.get("paths"))) for row in rows]

    async def release_media(self, generation_ids: Sequence[uuid.UUID]) -> int:
        row = await self._one("release_media", p_generation_ids=list(generation_ids))
        return row_int(row, "released")

    async def configure_guardrails(self, *, signup_bonus_credits: int) -> None:
        await self._one("configure_guardrails", **sql_args(locals()))

    async def operator_stats(
        self,
        *,
        since: datetime,
        success_target: float,
        completion_target_s: float,
        webhook_target: float,
        daily_budget_usd: float | None,
    ) -> JsonObject:
        row = await self._one("operator_stats", **sql_args(locals()))
        stats = row.get("stats")
        if not isinstance(stats, dict):
            raise AppError("operator_stats returned no figures.")
        return stats


def _strings(value: JsonValue) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
