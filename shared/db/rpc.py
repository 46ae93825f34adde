"""Calls to the database's SQL functions: the only way this service changes data.

`Rpc` is the typed facade the rest of the code uses: one method per SQL function, each one
atomic database call. The transports and the SQLSTATE table live in `shared.db.transports`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from shared.core.domain import Generation, JsonObject, NewGeneration
from shared.core.errors import AppError, JsonValue
from shared.db.calls import row_generation, row_int, sql_args
from shared.db.guardrail_calls import GuardrailCalls
from shared.db.transports import (
    SQLSTATE_ERRORS,
    PostgresTransport,
    RpcRow,
    SupabaseTransport,
    Transport,
    translate,
)

__all__ = [
    "SQLSTATE_ERRORS",
    "Applied",
    "Created",
    "PostgresTransport",
    "Read",
    "Rpc",
    "SupabaseTransport",
    "Transport",
    "Update",
    "translate",
]


log = logging.getLogger(__name__)

# One status read: the caller (user id) and the generation asked about.
Read = tuple[uuid.UUID, uuid.UUID]
# What the SQL functions' WN404 carries for a generation (read_generations answers it per read).
_GENERATION_MISSING = '{"entity": "generation"}'


@dataclass(frozen=True)
class Created:
    """create_generation's answer: the generation, whether this call made it (False: a replayed
    idempotency key returned the stored one, charging nothing), and the balance after it."""

    generation: Generation
    created: bool
    balance: int

    @property
    def replayed(self) -> bool:
        return not self.created


@dataclass(frozen=True)
class Applied:
    generation: Generation
    changed: bool
    refunded: int = 0
    # The owner's balance after the change, where the SQL function reports it (fail_submission).
    balance: int | None = None


@dataclass(frozen=True)
class Update:
    """What the provider says of one generation (apply_prediction's arguments)."""

    generation_id: uuid.UUID
    status: str
    job_id: str | None = None
    progress: int | None = None
    video_url: str | None = None
    error: str | None = None
    # Which path brought it (webhook, poll, sweep, cancel): the stats' webhook delivery rate.
    source: str | None = None
    # The provider's metrics.predict_time on a final report: its estimated cost.
    predict_time: float | None = None

    def as_json(self) -> JsonObject:
        """One item of apply_predictions' array (the same names, without the `p_`)."""
        return {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in asdict(self).items()}


def _applied(row: RpcRow) -> Applied:
    balance = row.get("balance")
    return Applied(
        row_generation(row),
        bool(row["changed"]),
        row_int(row, "refunded"),
        balance if isinstance(balance, int) else None,
    )


class Rpc(GuardrailCalls):
    """One method per SQL function; each is one atomic database call (the guardrails' in
    `shared.db.guardrail_calls`)."""

    async def create_generation(
        self,
        new: NewGeneration,
        *,
        max_active: int,
        rate_per_minute: int | None = None,
        daily_budget_usd: float | None = None,
    ) -> Created:
        """Reserve the cost and record `new` (queued); a replayed idempotency key returns the
        stored generation with created = False. The limits are the caller's settings: at most
        `max_active` running, `rate_per_minute` creates per user per rolling minute (None: no
        limit), none at all while the last 24 h of provider spend reached `daily_budget_usd`
        (None: no guard)."""
        row = await self._one(
            "create_generation",
            p_new=new.model_dump(mode="json"),
            p_max_active=max_active,
            p_rate_per_minute=rate_per_minute,
            p_daily_budget_usd=daily_budget_usd,
        )
        return Created(row_generation(row), bool(row["created"]), row_int(row, "balance"))

    async def mark_submitted(self, generation_id: uuid.UUID, job_id: str) -> Applied:
        row = await self._one("mark_submitted", **sql_args(locals()))
        return _applied(row)

    async def apply_prediction(
        self,
        generation_id: uuid.UUID,
        status: str,
        *,
        job_id: str | None = None,
        progress: int | None = None,
        video_url: str | None = None,
        error: str | None = None,
        source: str | None = None,
        predict_time: float | None = None,
    ) -> Applied:
        return await self.apply_update(
            Update(generation_id, status, job_id, progress, video_url, error, source, predict_time)
        )

    async def apply_update(self, update: Update) -> Applied:
        """apply_prediction for one `Update`."""
        return _applied(await self._one("apply_prediction", **sql_args(asdict(update))))

    async def apply_predictions(self, updates: Sequence[Update]) -> list[Applied | AppError]:
        """apply_prediction for each update in one call; each item's outcome or its own error
        (one item's failure does not undo the others)."""
        if not updates:
            return []
        rows = await self.transport.call(
            "apply_predictions", {"p_updates": [u.as_json() for u in updates]}
        )
        out: list[Applied | AppError | None] = [None] * len(updates)
        for row in rows:
            idx = row["idx"]
            if not isinstance(idx, int) or not 0 <= idx < len(updates):
                raise AppError("apply_predictions returned a row for no update.")
            code = row.get("error_code")
            if isinstance(code, str):
                message = row.get("error_message")
                out[idx] = translate(code, message if isinstance(message, str) else None, None)
            else:
                out[idx] = _applied(row)
        if any(o is None for o in out):
            raise AppError("apply_predictions left updates without an answer.")
        return [o for o in out if o is not None]

    async def fail_submission(self, generation_id: uuid.UUID, error: str) -> Applied:
        row = await self._one("fail_submission", **sql_args(locals()))
        return _applied(row)

    async def request_cancel(self, user_id: uuid.UUID, generation_id: uuid.UUID) -> Applied:
        row = await self._one("request_cancel", **sql_args(locals()))
        return _applied(row)

    async def claim_stale_generations(self, *, limit: int, stale_after_s: int) -> list[Generation]:
        rows = await self.transport.call("claim_stale_generations", sql_args(locals()))
        return [row_generation(row) for row in rows]

    async def set_video_path(self, generation_id: uuid.UUID, video_path: str) -> Applied:
        row = await self._one("set_video_path", **sql_args(locals()))
        return _applied(row)

    async def claim_pending_copies(
        self, *, limit: int, retry_after_s: int, max_age_s: int, max_attempts: int, lease_s: int
    ) -> list[Generation]:
        rows = await self.transport.call("claim_pending_copies", sql_args(locals()))
        return [row_generation(row) for row in rows]

    async def claim_copy(
        self, generation_id: uuid.UUID, *, lease_s: int, max_attempts: int
    ) -> tuple[Generation, bool]:
        """Claim one video's copy for lease_s; False when it needs none or another holds it."""
        row = await self._one("claim_copy", **sql_args(locals()))
        return row_generation(row), bool(row["claimed"])

    async def record_copy_failure(
        self, generation_id: uuid.UUID, error: str, *, retryable: bool, retry_after_s: int
    ) -> None:
        await self._one("record_copy_failure", **sql_args(locals()))

    async def get_generation(self, user_id: uuid.UUID, generation_id: uuid.UUID) -> Generation:
        row = await self._one("get_generation", **sql_args(locals()))
        return row_generation(row)

    async def read_generation(
        self, user_id: uuid.UUID, generation_id: uuid.UUID, *, poll_after_s: int, max_polls: int
    ) -> tuple[Generation, bool]:
        """The owner's generation, and whether this caller won the claim to poll the provider."""
        row = await self._one("read_generation", **sql_args(locals()))
        return row_generation(row), bool(row["claimed"])

    async def read_generations(
        self, reads: Sequence[Read], *, poll_after_s: int, max_polls: int
    ) -> list[tuple[Generation, bool] | AppError]:
        """read_generation for each (user id, generation id) pair in one call; each read's
        answer, or its own NotFound (the same error read_generation raises)."""
        if not reads:
            return []
        rows = await self.transport.call(
            "read_generations",
            {
                "p_user_ids": [user_id for user_id, _ in reads],
                "p_generation_ids": [generation_id for _, generation_id in reads],
                "p_poll_after_s": poll_after_s,
                "p_max_polls": max_polls,
            },
        )
        out: list[tuple[Generation, bool] | AppError | None] = [None] * len(reads)
        for row in rows:
            idx = row.get("idx")
            if not isinstance(idx, int) or not 0 <= idx < len(reads) or out[idx] is not None:
                raise AppError("read_generations returned a row for no read.")
            out[idx] = _read_answer(row)
        answered = [o for o in out if o is not None]
        if len(answered) != len(reads):
            raise AppError("read_generations left reads without an answer.")
        return answered

    async def list_generations(
        self,
        user_id: uuid.UUID,
        *,
        limit: int,
        before: tuple[datetime, uuid.UUID] | None = None,
    ) -> list[Generation]:
        rows = await self.transport.call(
            "list_generations",
            {
                "p_user_id": user_id,
                "p_limit": limit,
                "p_before_created_at": before[0] if before else None,
                "p_before_id": before[1] if before else None,
            },
        )
        return [row_generation(row) for row in rows]

    async def get_credits(self, user_id: uuid.UUID, *, limit: int) -> tuple[int, list[JsonValue]]:
        row = await self._one("get_credits", **sql_args(locals()))
        entries = row.get("transactions")
        return row_int(row, "balance"), list(entries) if isinstance(entries, list) else []

    async def add_credits(
        self,
        user_id: uuid.UUID,
        amount: int,
        *,
        type: str = "bonus",
        description: str | None = None,
    ) -> int:
        row = await self._one("add_credits", **sql_args(locals()))
        return row_int(row, "balance")

    async def refund_credits(self, generation_id: uuid.UUID) -> int:
        row = await self._one("refund_credits", **sql_args(locals()))
        return row_int(row, "refunded")

    async def aclose(self) -> None:
        await self.transport.aclose()


def _read_answer(row: RpcRow) -> tuple[Generation, bool] | AppError:
    """One read of a batch: its generation, NotFound, or (a row our model refuses) an error for
    that read alone, so one odd row cannot fail the other reads it shares a call with."""
    if row.get("generation") is None:
        return translate("WN404", None, _GENERATION_MISSING)
    try:
        return row_generation(row), bool(row.get("claimed"))
    except ValueError:  # pydantic's ValidationError
        log.exception("read_generations returned a generation the model refuses")
        return AppError("The generation could not be read.")
