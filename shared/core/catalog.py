"""What can be generated, what it costs, and how each offering maps to a Replicate model.

One table. Settings may override or extend it (CATALOG_OVERRIDES, a JSON list of offerings), so
a model slug or a price changes without a deploy of code.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.core.errors import ConfigurationError, InvalidInput, JsonValue

ASPECT_RATIOS = ("16:9", "9:16")


class Offering(BaseModel):
    """One (model, resolution) the app sells."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(min_length=1, max_length=64)
    kind: str = Field(pattern="^(t2v|i2v)$")
    resolution: str = Field(pattern="^[0-9]{3,4}p$")
    cost: int = Field(gt=0, le=10_000)
    replicate_model: str = Field(pattern="^[a-z0-9_.-]+/[a-z0-9_.-]+$")
    # Inputs sent as they are (steps, fast mode, ...); the request's fields are added to them.
    fixed_input: dict[str, JsonValue] = Field(default_factory=dict)
    image_field: str | None = "image"
    # Estimated provider price in USD per second of predict time (Replicate bills the GPU by
    # the second): what a generation cost is estimated from, for the budget guard and stats.
    price_per_s: float = Field(default=0.0, ge=0, le=1)


# Replicate's public per-second hardware prices (USD); CATALOG_OVERRIDES corrects them.
H100_PER_S = 0.001525
L40S_PER_S = 0.000975


def _wan_14b(kind: str, resolution: str, *, cost: int) -> Offering:
    """Wan 2.1 14B as wavespeedai serves it: a Replicate model per kind and resolution, on H100."""
    return Offering(
        model=f"{kind}-14B",
        kind=kind,
        resolution=resolution,
        cost=cost,
        replicate_model=f"wavespeedai/wan-2.1-{kind}-{resolution}",
        price_per_s=H100_PER_S,
    )


DEFAULT_OFFERINGS: tuple[Offering, ...] = (
    _wan_14b("t2v", "480p", cost=10),
    _wan_14b("t2v", "720p", cost=20),
    Offering(
        model="t2v-1.3B",
        kind="t2v",
        resolution="480p",
        cost=10,
        replicate_model="wan-video/wan-2.1-1.3b",
        fixed_input={"resolution": "480p"},
        price_per_s=L40S_PER_S,
    ),
    _wan_14b("i2v", "480p", cost=10),
    _wan_14b("i2v", "720p", cost=20),
)


@dataclass(frozen=True)
class Catalog:
    offerings: dict[tuple[str, str], Offering] = field(default_factory=dict)

    @classmethod
    def build(cls, offerings: Iterable[Offering]) -> Catalog:
        return cls({(o.model, o.resolution): o for o in offerings})

    def cheapest_cost(self) -> int:
        return min((o.cost for o in self.offerings.values()), default=0)

    def models(self, kind: str) -> list[str]:
        return sorted({o.model for o in self.offerings.values() if o.kind == kind})

    def lookup(self, kind: str, model: str, resolution: str) -> Offering:
        """The offering, or InvalidInput that says what is available instead."""
        matches = [o for (m, _), o in self.offerings.items() if m == model and o.kind == kind]
        if not matches:
            available = ", ".join(self.models(kind)) or "none"
            raise InvalidInput(f"Unknown model {model!r}; available: {available}.", field="model")
        offering = self.offerings.get((model, resolution))
        if offering is None:
            sizes = ", ".join(sorted(o.resolution for o in matches))
            raise InvalidInput(
                f"{model} is not available in {resolution}; choose {sizes}.",
                field="resolution",
            )
        return offering

    def build_input(
        self,
        offering: Offering,
        *,
        prompt: str,
        negative_prompt: str | None,
        seed: int | None,
        aspect_ratio: str | None,
        image: str | None = None,
    ) -> dict[str, JsonValue]:
        """The Replicate input for one request."""
        data: dict[str, JsonValue] = dict(offering.fixed_input)
        data["prompt"] = prompt
        if negative_prompt:
            data["negative_prompt"] = negative_prompt
        if seed is not None:
            data["seed"] = seed
        if aspect_ratio:
            data["aspect_ratio"] = aspect_ratio
        if image is not None and offering.image_field:
            data[offering.image_field] = image
        return data


@lru_cache(maxsize=8)
def load_catalog(overrides_json: str | None = None) -> Catalog:
    """The default table with the settings' overrides applied (same (model, resolution) wins)."""
    offerings = {(o.model, o.resolution): o for o in DEFAULT_OFFERINGS}
    if overrides_json:
        try:
            raw = json.loads(overrides_json)
            if not isinstance(raw, list):
                raise TypeError("CATALOG_OVERRIDES must be a JSON list of offerings")
            for item in raw:
                offering = Offering.model_validate(item)
                offerings[(offering.model, offering.resolution)] = offering
        except (ValueError, TypeError, ValidationError) as exc:
            raise ConfigurationError(f"CATALOG_OVERRIDES is invalid: {exc}") from exc
    return Catalog.build(offerings.values())
