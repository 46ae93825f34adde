"""The domain's data: a generation as asked for, a new generation as requested, a generation as
the database returns it, and its statuses."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.core.errors import JsonValue

GenerationStatus = Literal["queued", "processing", "completed", "failed", "canceled"]
GenerationKind = Literal["t2v", "i2v"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "canceled"})
JsonObject = dict[str, JsonValue]


class GenerationAsk(BaseModel):
    """What a user asks a generation to be, before it is priced: the fields a request to submit
    (`shared.flows.lifecycle.SubmitRequest`), a new generation and a stored one share."""

    model_config = ConfigDict(frozen=True)

    user_id: uuid.UUID
    kind: GenerationKind
    model: str
    resolution: str
    prompt: str
    negative_prompt: str | None = None
    input_image_path: str | None = None
    idempotency_key: str | None = None
    retry_of: uuid.UUID | None = None


class GenerationFields(GenerationAsk):
    """What a generation was asked to be, priced: the fields a new one and a stored one share."""

    cost: int
    params: JsonObject = Field(default_factory=dict)


class NewGeneration(GenerationFields):
    """The one definition of a new generation's fields, from the HTTP request to the SQL call:
    create_generation takes it as one jsonb argument (the same names), so a field is added here
    and in that function's record, nowhere in between."""

    model_config = ConfigDict(extra="forbid")

    # Fingerprint of the input image, so a replayed key with another image is a conflict.
    input_digest: str | None = None
    # The catalog's estimated provider price (USD per second), kept to cost the final report.
    price_per_s: float | None = None


class Generation(GenerationFields):
    """One row of public.generations (as jsonb from the SQL functions)."""

    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    status: GenerationStatus
    progress: int = 0
    job_id: str | None = None
    video_url: str | None = None
    video_path: str | None = None
    error_message: str | None = None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    last_polled_at: datetime | None = None
    poll_attempts: int = 0
    cancel_requested_at: datetime | None = None
    copy_attempts: int = 0
    copy_error: str | None = None
    # Guardrails (issue 14): provider spend, how the outcome arrived, media lifetime.
    predict_time_s: float | None = None
    provider_cost_usd: float | None = None
    finished_by: str | None = None
    media_expired_at: datetime | None = None
    deleted_at: datetime | None = None

    @property
    def stored_paths(self) -> list[str]:
        """Our storage files of this generation (video, input image)."""
        return [p for p in (self.video_path, self.input_image_path) if p]

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES
