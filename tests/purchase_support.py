"""Payment test helpers: Stripe event facts for a purchase, and buying a pack through SQL."""

from __future__ import annotations

import uuid

from shared.core.purchases import CreditPack, Purchase, StripeFact
from shared.db.purchases import PurchaseStore
from shared.payments.packs import DEFAULT_PACKS

SMALL: CreditPack = DEFAULT_PACKS[0]  # 100 credits for 5.00 USD


def evt() -> str:
    return f"evt_{uuid.uuid4().hex}"


def completed(p: Purchase, *, amount: int | None = None, event_id: str | None = None) -> StripeFact:
    return StripeFact(
        event_id or evt(),
        "checkout.session.completed",
        purchase_id=p.id,
        payment_intent=f"pi_{p.id.hex}",
        payment_status="paid",
        amount=p.amount if amount is None else amount,
        currency=p.currency,
    )


def refunded(p: Purchase, amount_refunded: int, *, by_metadata: bool = True) -> StripeFact:
    return StripeFact(
        evt(),
        "charge.refunded",
        purchase_id=p.id if by_metadata else None,
        payment_intent=f"pi_{p.id.hex}",
        amount_refunded=amount_refunded,
    )


def dispute(p: Purchase, status: str) -> StripeFact:
    kind = "charge.dispute.created" if status == "open" else "charge.dispute.closed"
    return StripeFact(
        evt(),
        kind,
        payment_intent=f"pi_{p.id.hex}",
        dispute_id=f"dp_{p.id.hex[:12]}",
        dispute_amount=p.amount,
        dispute_status=status,
    )


async def bought(store: PurchaseStore, user: uuid.UUID, pack: CreditPack = SMALL) -> Purchase:
    purchase, created = await store.create_purchase(
        user, pack, idempotency_key=None, rate_per_minute=None
    )
    assert created
    return purchase


async def paid(store: PurchaseStore, user: uuid.UUID, pack: CreditPack = SMALL) -> Purchase:
    """A purchase of `pack` by `user`, paid (its completion event applied)."""
    purchase = await bought(store, user, pack)
    outcome = await store.apply_event(completed(purchase))
    assert outcome.outcome == "granted"
    return purchase
