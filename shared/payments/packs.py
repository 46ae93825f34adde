"""Credit packs: what is for sale, at what price (settings: CREDIT_PACKS, a JSON list)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError

from shared.core.errors import ConfigurationError, InvalidInput
from shared.core.purchases import CreditPack

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
