"""Credit packs: what is for sale, at what price (settings: CREDIT_PACKS, a JSON list)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from shared.core.errors import ConfigurationError, InvalidInput


class CreditPack(BaseModel):
    """One pack: `credits` for `amount` in the currency's minor unit (500 = 5.00 USD)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern="^[a-z0-9_-]{1,64}$")
    credits: int = Field(gt=0, le=1_000_000)
    amount: int = Field(gt=0, le=100_000_000)
    currency: str = Field(pattern="^[a-z]{3}$")
    # A Stripe Price for this pack; without one the session carries inline price data.
    price_id: str | None = Field(default=None, pattern="^price_[A-Za-z0-9_]{1,200}$")


DEFAULT_PACKS: tuple[CreditPack, ...] = (
    CreditPack(id="small", credits=100, amount=500, currency="usd"),
    CreditPack(id="medium", credits=500, amount=2000, currency="usd"),
    CreditPack(id="large", credits=1200, amount=4000, currency="usd"),
)

_PACKS = TypeAdapter(list[CreditPack])


@dataclass(frozen=True)
class Packs:
    items: tuple[CreditPack, ...]

    def lookup(self, pack_id: str) -> CreditPack:
        for pack in self.items:
            if pack.id == pack_id:
                return pack
        names = ", ".join(p.id for p in self.items)
        raise InvalidInput(f"Unknown pack {pack_id[:64]!r}; available: {names}.", field="pack")


def load_packs(raw: str | None) -> Packs:
    """The packs from CREDIT_PACKS (JSON), or the defaults; a bad value fails at start."""
    if raw is None or not raw.strip():
        return Packs(DEFAULT_PACKS)
    try:
        packs = _PACKS.validate_python(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        raise ConfigurationError(f"CREDIT_PACKS is not a valid list of packs: {exc}") from exc
    ids = [p.id for p in packs]
    if not packs or len(set(ids)) != len(ids):
        raise ConfigurationError("CREDIT_PACKS must list at least one pack, each id once.")
    return Packs(tuple(packs))
