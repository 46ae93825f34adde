"""The HTTP contract: request and response bodies (pydantic)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.core.domain import Generation, GenerationKind, GenerationStatus
from shared.core.text import unstorable

PROMPT_MIN = 10
PROMPT_MAX = 500


class GenerationRequest(BaseModel):
    """The fields shared by text-to-video and image-to-video."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    prompt: str = Field(min_length=PROMPT_MIN, max_length=PROMPT_MAX)
    model: str = Field(min_length=1, max_length=64)
    resolution: str = Field(min_length=1, max_length=16)
    negative_prompt: str | None = Field(default=None, max_length=PROMPT_MAX)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    aspect_ratio: Literal["16:9", "9:16"] | None = None

    @field_validator("prompt", "model", "resolution", "negative_prompt")
    @classmethod
    def _storable(cls, value: str | None) -> str | None:
        # A NUL or a lone surrogate would reach Postgres (a 500); refuse it here as a 422.
        if value is not None and (why := unstorable(value)) is not None:
            raise ValueError(why)
        return value

    @field_validator("negative_prompt")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None


class TextToVideoRequest(GenerationRequest):
    """POST /api/generation/text-to-video (JSON)."""


class GenerationOut(BaseModel):
    """A generation as its owner sees it."""

    id: uuid.UUID
    kind: GenerationKind
    model: str
    resolution: str
    prompt: str
    negative_prompt: str | None
    status: GenerationStatus
    progress: int
    cost: int
    video_url: str | None = Field(
        description="Where to watch the video: our stored copy (signed) once kept, "
        "else the provider's temporary URL."
    )
    error_message: str | None
    media_expired: bool = Field(
        default=False,
        description="True when the stored video and input image were deleted after the "
        "retention window (video_url is then null).",
    )
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None

    @classmethod
    def from_generation(cls, gen: Generation, *, video_url: str | None = None) -> GenerationOut:
        return cls(**_generation_fields(gen, video_url))


class CreatedOut(GenerationOut):
    """The answer to a create: the generation plus what it did to the balance."""

    generation_id: uuid.UUID = Field(description="Same as id (the original app's field name).")
    credits_remaining: int
    replayed: bool = Field(description="True when an Idempotency-Key replay returned it.")

    @classmethod
    def created(cls, gen: Generation, *, balance: int, replayed: bool) -> CreatedOut:
        return cls(
            **_generation_fields(gen, None),
            generation_id=gen.id,
            credits_remaining=balance,
            replayed=replayed,
        )


def _generation_fields(gen: Generation, video_url: str | None) -> dict[str, object]:
    return {
        "id": gen.id,
        "kind": gen.kind,
        "model": gen.model,
        "resolution": gen.resolution,
        "prompt": gen.prompt,
        "negative_prompt": gen.negative_prompt,
        "status": gen.status,
        "progress": gen.progress,
        "cost": gen.cost,
        "video_url": video_url if video_url is not None else gen.video_url,
        "error_message": gen.error_message,
        "media_expired": gen.media_expired_at is not None,
        "created_at": gen.created_at,
        "updated_at": gen.updated_at,
        "started_at": gen.started_at,
        "completed_at": gen.completed_at,
    }


def error_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI `responses` for the error statuses a route can answer."""
    return {status: {"model": ErrorOut} for status in statuses}


class HistoryOut(BaseModel):
    items: list[GenerationOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page.")


class LedgerEntry(BaseModel):
    id: uuid.UUID
    amount: int
    type: str
    generation_id: uuid.UUID | None = None
    description: str | None = None
    created_at: datetime


class CreditsOut(BaseModel):
    balance: int
    low_balance: bool = Field(description="True when the balance is under the warning threshold.")
    low_balance_threshold: int
    cheapest_cost: int = Field(description="What the cheapest generation costs.")
    transactions: list[LedgerEntry]


class WebhookAck(BaseModel):
    ok: bool = True
    applied: bool
    status: GenerationStatus | None = None


class FieldError(BaseModel):
    field: str
    message: str


class ErrorOut(BaseModel):
    """Every error body: a readable `detail`, a stable `code`, and fields that help."""

    model_config = ConfigDict(extra="allow")

    detail: str
    code: str
    request_id: str | None = None
    errors: list[FieldError] | None = None
