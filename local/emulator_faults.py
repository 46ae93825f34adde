"""The Replicate emulator's configuration and fault knobs.

`Faults` is what a scenario turns: set at start through `EmulatorConfig.faults`, changed at run
time with `POST /__emulator/faults`. Rolls come from one `random.Random(seed)`, so a scenario
with the same seed and the same sequence of requests replays the same faults.
"""

from __future__ import annotations

import base64
import binascii
import random
import re
from collections.abc import Mapping
from typing import Annotated, Protocol, TypeVar

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, field_validator

Rate = Annotated[float, Field(ge=0.0, le=1.0)]
Seconds = Annotated[float, Field(ge=0.0)]


class Faults(BaseModel):
    """Fault knobs. Rates are probabilities in [0, 1], rolled once per prediction or delivery."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fail_rate: Rate = 0.0
    """Share of predictions that end `failed` with an error message, halfway through."""
    abort_rate: Rate = 0.0
    """Share of predictions that end `aborted` without ever starting."""
    create_error_status: Annotated[int, Field(ge=400, le=599)] | None = None
    """When set, every create answers this status with a Replicate-style error body."""
    create_delay_s: Seconds = 0.0
    """Sleep after creating the prediction and before answering: provokes client timeouts
    while the prediction still exists and runs (the ambiguous case a backend must survive)."""
    webhook_drop_rate: Rate = 0.0
    """Share of webhook deliveries never sent."""
    webhook_duplicate_rate: Rate = 0.0
    """Share of webhook deliveries sent twice (the copy gets its own webhook-id)."""
    webhook_delay_s: Seconds = 0.0
    """Sleep before each webhook delivery."""
    webhook_reorder: bool = False
    """Hold back every non-final webhook and deliver them after the final one."""
    duration_s: Seconds = 3.0
    """Total run time of a prediction, from create to its final status."""
    output_size_bytes: Annotated[int, Field(ge=0)] = 0
    """Size of the served MP4, padded with a `free` box; 0 serves the sample's natural size."""


class EmulatorConfig(BaseModel):
    """Everything the emulator needs at start. Secrets have no defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_token: str = Field(min_length=1)
    """The bearer token clients must send (Replicate's REPLICATE_API_TOKEN)."""
    webhook_secret: str
    """Signing secret for webhooks, `whsec_<base64>`, as Replicate's default secret."""
    public_base_url: str | None = None
    """Base URL put in prediction URLs and outputs; default: the URL the request came in on."""
    seed: int | None = None
    """Seed of the fault dice; None draws a fresh seed."""
    faults: Faults = Faults()
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    webhook_retry_delays_s: tuple[Seconds, ...] = (0.2, 0.5, 1.0, 2.0)
    known_models: frozenset[str] | None = None
    """Model slugs `GET /v1/models/{owner}/{name}` finds; None: the catalog's defaults."""
    """Backoff between attempts of the final webhook (only that one is retried, as Replicate)."""

    @field_validator("webhook_secret")
    @classmethod
    def _check_secret(cls, value: str) -> str:
        if not value.startswith("whsec_"):
            raise ValueError("webhook_secret must look like whsec_<base64>")
        try:
            key = base64.b64decode(value.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("webhook_secret is not valid base64 after whsec_") from exc
        if not key:
            raise ValueError("webhook_secret is empty")
        return value

    @field_validator("public_base_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else None


KnobsT = TypeVar("KnobsT", bound=BaseModel)


def changed(current: KnobsT, changes: Mapping[str, object]) -> KnobsT:
    """`current` with `changes` applied and validated: what `POST /__emulator/faults` does in
    every emulator (a bad value is a 422 naming the knob, and nothing changes)."""
    try:
        return type(current).model_validate({**current.model_dump(), **changes})
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from exc


class Knobbed(Protocol[KnobsT]):
    """An emulator's holder of its fault knobs (its engine, or the Supabase FaultState)."""

    faults: KnobsT


def faults_router(holder: Knobbed[KnobsT]) -> APIRouter:
    """`GET /__emulator/faults` reads the knobs, `POST` changes some (see `changed`): the same
    in every emulator."""
    router = APIRouter()
    knobs = type(holder.faults)

    @router.get("/__emulator/faults", response_model=knobs)
    async def get_faults() -> KnobsT:
        return holder.faults

    @router.post("/__emulator/faults", response_model=knobs)
    async def set_faults(changes: dict[str, JsonValue]) -> KnobsT:
        holder.faults = changed(holder.faults, changes)
        return holder.faults

    return router


class Dice:
    """Seeded fault rolls; `reset` restarts the sequence."""

    def __init__(self, seed: int | None) -> None:
        self._seed = seed
        # Fault dice for reproducible scenarios, not cryptography.
        self._rng = random.Random(seed)  # noqa: S311

    def roll(self, rate: float) -> bool:
        """True with probability `rate` (never for 0, always for 1)."""
        return self._rng.random() < rate

    def reset(self) -> None:
        self._rng.seed(self._seed)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a `Cancel-After` value: `1800`, `30s`, `5m`, `1h30m`, `1.5s`, `250ms`.

    Raises ValueError for anything else. Unlike Replicate (minimum 5 s) any positive value is
    accepted, so tests can use tiny deadlines.
    """
    value = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        seconds = float(value)
    else:
        if not value or _DURATION_PART.sub("", value) != "":
            raise ValueError(f"invalid duration: {text!r}")
        seconds = sum(
            float(amount) * _UNIT_SECONDS[unit] for amount, unit in _DURATION_PART.findall(value)
        )
    if seconds <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    return seconds
