"""What payments are about: a credit pack for sale, a purchase of one, the facts of a Stripe
event as the payment SQL functions take them, and what applying one did."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class CreditPack(BaseModel):
    """One pack: `credits` for `amount` in the currency's minor unit (500 = 5.00 USD)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern="^[a-z0-9_-]{1,64}$")
    credits: int = Field(gt=0, le=1_000_000)
    amount: int = Field(gt=0, le=100_000_000)
    currency: str = Field(pattern="^[a-z]{3}$")
    # A Stripe Price for this pack; without one the session carries inline price data.
    price_id: str | None = Field(default=None, pattern="^price_[A-Za-z0-9_]{1,200}$")


@dataclass(frozen=True)
class StripeFact:
    """One event, as apply_stripe_event takes it."""

    event_id: str
    type: str
    purchase_id: uuid.UUID | None = None
    payment_intent: str | None = None
    payment_status: str | None = None
    amount: int | None = None
    currency: str | None = None
    amount_refunded: int | None = None
    dispute_id: str | None = None
    dispute_amount: int | None = None
    dispute_status: str | None = None


class Purchase(BaseModel):
    """A row of public.purchases."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: uuid.UUID
    user_id: uuid.UUID | None
    pack_id: str
    credits: int
    amount: int
    currency: str
    status: str
    amount_refunded: int = 0
    dispute_status: str | None = None
    credits_reversed: int = 0
    credits_owed: int = 0
    session_id: str | None = None
    checkout_url: str | None = None
    payment_intent: str | None = None
    review_reason: str | None = None
    created_at: datetime
    paid_at: datetime | None = None
    closed_at: datetime | None = None


@dataclass(frozen=True)
class EventOutcome:
    outcome: str
    purchase: Purchase | None
    duplicate: bool
