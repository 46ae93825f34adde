"""Typed calls to the payment SQL functions (migrations/definitions/*purchase*, *stripe*).

Like `shared.db.rpc.Rpc`: one method per SQL function, each one atomic database call, over the
same transport (and so the same SQLSTATE -> error table).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict

from shared.core.purchases import CreditPack, EventOutcome, Purchase, StripeFact
from shared.db.calls import SqlCalls, sql_args


def _purchase(value: object) -> Purchase:
    return Purchase.model_validate(value)


class PurchaseStore(SqlCalls):
    """One method per payment SQL function."""

    async def create_purchase(
        self,
        user_id: uuid.UUID,
        pack: CreditPack,
        *,
        idempotency_key: str | None,
        rate_per_minute: int | None,
    ) -> tuple[Purchase, bool]:
        row = await self._one(
            "create_purchase",
            p_user_id=user_id,
            p_pack_id=pack.id,
            p_credits=pack.credits,
            p_amount=pack.amount,
            p_currency=pack.currency,
            p_idempotency_key=idempotency_key,
            p_rate_per_minute=rate_per_minute,
        )
        return _purchase(row["purchase"]), bool(row["created"])

    async def attach_checkout_session(
        self, purchase_id: uuid.UUID, session_id: str, checkout_url: str | None
    ) -> Purchase:
        row = await self._one("attach_checkout_session", **sql_args(locals()))
        return _purchase(row["purchase"])

    async def apply_event(self, fact: StripeFact) -> EventOutcome:
        row = await self._one("apply_stripe_event", **sql_args(asdict(fact)))
        purchase = row.get("purchase")
        return EventOutcome(
            outcome=str(row["outcome"]),
            purchase=_purchase(purchase) if purchase is not None else None,
            duplicate=bool(row["duplicate"]),
        )

    async def settle_purchase(
        self,
        purchase_id: uuid.UUID,
        result: str,
        *,
        payment_intent: str | None = None,
        amount: int | None = None,
        currency: str | None = None,
    ) -> tuple[str, Purchase]:
        row = await self._one("settle_purchase", **sql_args(locals()))
        return str(row["outcome"]), _purchase(row["purchase"])

    async def claim_pending_purchases(self, *, limit: int, older_than_s: int) -> list[Purchase]:
        rows = await self.transport.call("claim_pending_purchases", sql_args(locals()))
        return [_purchase(r["purchase"]) for r in rows]

    async def apply_unmatched_events(self, *, limit: int) -> int:
        row = await self._one("apply_unmatched_stripe_events", **sql_args(locals()))
        applied = row.get("applied")
        return applied if isinstance(applied, int) else 0

    async def list_purchases(self, user_id: uuid.UUID, *, limit: int) -> list[Purchase]:
        rows = await self.transport.call("list_purchases", sql_args(locals()))
        return [_purchase(r["purchase"]) for r in rows]

    async def lift_hold(self, user_id: uuid.UUID, reason: str) -> tuple[bool, str | None]:
        row = await self._one("lift_hold", **sql_args(locals()))
        previous = row.get("previous_reason")
        return bool(row["was_held"]), previous if isinstance(previous, str) else None
