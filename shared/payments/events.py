"""Stripe events reduced to the facts we act on (the arguments of apply_stripe_event).

Parsing happens only after the signature is verified. Unknown event types are kept (recorded
and ignored by the database); unknown fields are ignored. Our purchase id comes from the
session's `client_reference_id` or any object's `metadata.purchase_id`; a value that is not a
UUID is treated as absent (the event is then not ours, or matched by its payment).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.core.errors import InvalidInput
from shared.core.purchases import StripeFact

CHECKOUT_EVENTS = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "checkout.session.expired",
    }
)
REFUND_EVENTS = frozenset({"charge.refunded"})
DISPUTE_EVENTS = frozenset({"charge.dispute.created", "charge.dispute.closed"})
# A dispute closed as `warning_closed` was an inquiry that never took the money.
_DISPUTE_WON = frozenset({"won", "warning_closed"})


# Amounts are integers in the currency's minor unit; Stripe's largest is 99,999,999. Anything
# past a 32-bit integer is no Stripe amount (and no SQL integer): the event is refused (422).
_Amount = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]


class _Ref(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str


class _Object(BaseModel):
    """The fields we read, whichever object the event carries (session, charge, dispute)."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    client_reference_id: str | None = None
    metadata: dict[str, str | None] = Field(default_factory=dict)
    payment_status: str | None = None
    payment_intent: str | _Ref | None = None
    amount_total: _Amount | None = None
    amount: _Amount | None = None
    amount_refunded: _Amount | None = None
    currency: str | None = None
    status: str | None = None


class _Data(BaseModel):
    model_config = ConfigDict(extra="ignore")
    object: _Object


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1, max_length=255)
    type: str = Field(min_length=1, max_length=255)
    data: _Data


def _uuid(value: str | None) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _intent(value: str | _Ref | None) -> str | None:
    if isinstance(value, _Ref):
        return value.id
    return value or None


def parse_event(body: bytes) -> StripeFact:
    """The facts of one verified event body; InvalidInput if it is not a Stripe event."""
    try:
        event = _Event.model_validate_json(body)
    except ValidationError as exc:
        raise InvalidInput("The webhook payload is not a Stripe event.") from exc
    obj = event.data.object
    metadata_purchase = _uuid(obj.metadata.get("purchase_id"))
    intent = _intent(obj.payment_intent)
    if event.type in CHECKOUT_EVENTS:
        return StripeFact(
            event.id,
            event.type,
            purchase_id=_uuid(obj.client_reference_id) or metadata_purchase,
            payment_intent=intent,
            payment_status=obj.payment_status,
            amount=obj.amount_total,
            currency=obj.currency.lower() if obj.currency else None,
        )
    if event.type in REFUND_EVENTS:
        return StripeFact(
            event.id,
            event.type,
            purchase_id=metadata_purchase,
            payment_intent=intent,
            amount_refunded=max(obj.amount_refunded or 0, 0),
        )
    if event.type in DISPUTE_EVENTS:
        if event.type == "charge.dispute.created":
            status = "open"
        else:
            status = "won" if obj.status in _DISPUTE_WON else "lost"
        return StripeFact(
            event.id,
            event.type,
            purchase_id=metadata_purchase,
            payment_intent=intent,
            dispute_id=obj.id,
            dispute_amount=max(obj.amount or 0, 0),
            dispute_status=status,
        )
    return StripeFact(event.id, event.type)
