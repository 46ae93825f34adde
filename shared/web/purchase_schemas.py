"""The HTTP contract of payments: packs, checkout, purchases, the Stripe webhook's answer."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from shared.core.purchases import CreditPack, Purchase


class PackOut(BaseModel):
    id: str
    credits: int
    amount: int = Field(description="Price in the currency's minor unit (500 = 5.00 USD).")
    currency: str

    @classmethod
    def from_pack(cls, pack: CreditPack) -> PackOut:
        return cls(id=pack.id, credits=pack.credits, amount=pack.amount, currency=pack.currency)


class CheckoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    pack: str = Field(min_length=1, max_length=64, description="A pack id from /api/credits/packs.")


class CheckoutOut(BaseModel):
    purchase_id: uuid.UUID
    session_id: str
    checkout_url: str = Field(description="Send the buyer here (Stripe's hosted checkout page).")


class PurchaseOut(BaseModel):
    id: uuid.UUID
    pack: str
    credits: int
    amount: int
    currency: str
    status: str = Field(description="pending, paid, failed, expired or review.")
    amount_refunded: int
    credits_reversed: int = Field(description="Credits taken back for refunds or disputes.")
    dispute_status: str | None
    created_at: datetime
    paid_at: datetime | None

    @classmethod
    def from_purchase(cls, p: Purchase) -> PurchaseOut:
        """The purchase's fields of the same names, and its pack's id."""
        return cls(**p.model_dump(include=set(cls.model_fields)), pack=p.pack_id)


class StripeAck(BaseModel):
    received: bool = True
    outcome: str
    duplicate: bool = False
