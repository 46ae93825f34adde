"""The Replicate adapter: create, get and cancel predictions, and read what they say.

Uses the real `replicate` client (its base URL comes from settings, so the local emulator stands
in for Replicate). Two things the client gets wrong for us are handled here:

- its Prediction model rejects the `aborted` status, so get/cancel parse the raw JSON into our
  own `Prediction` model;
- a create is never retried (Replicate has no idempotency key); the client already retries only
  idempotent methods.

Every Replicate, HTTP and timeout error becomes ProviderError (502: the provider refused) or
ProviderUnavailable (503: try again later), raised `from` the original.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from shared.core.catalog import Offering
from shared.core.errors import JsonValue, ProviderError, ProviderUnavailable
from shared.core.text import storable

if TYPE_CHECKING:
    import httpx
    from replicate.client import Client
    from replicate.prediction import Prediction as ReplicatePrediction

    from shared.core.config import Settings

ReplicateStatus = Literal["starting", "processing", "succeeded", "failed", "canceled", "aborted"]
OurStatus = Literal["processing", "completed", "failed", "canceled"]

_STATUS_MAP: dict[str, OurStatus] = {
    "starting": "processing",
    "processing": "processing",
    "succeeded": "completed",
    "failed": "failed",
    "canceled": "canceled",
    # Cancel-After passed before the prediction started: for the user it simply failed.
    "aborted": "failed",
}
_PERCENT = re.compile(r"(\d{1,3})%\|")
_STEPS = re.compile(r"(?<!\d)(\d{1,9})/(\d{1,9}) \[")
T = TypeVar("T")


class Prediction(BaseModel):
    """The parts of Replicate's prediction object we use."""

    model_config = ConfigDict(extra="ignore")

    id: str
    status: ReplicateStatus
    output: JsonValue = None
    error: JsonValue = None
    logs: str | None = None
    metrics: dict[str, JsonValue] | None = None

    @property
    def predict_time(self) -> float | None:
        """Seconds the provider spent predicting (`metrics.predict_time`, on a final report)."""
        value = (self.metrics or {}).get("predict_time")
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value) if 0 <= value < 7 * 86400 else None

    @field_validator("metrics", mode="before")
    @classmethod
    def _metrics_or_nothing(cls, value: object) -> object:
        # Only `predict_time` is read from it: metrics of another shape never block the report
        # (a final report must apply, and refund, whatever else it holds).
        return value if isinstance(value, dict) else None

    @field_validator("id")
    @classmethod
    def _storable_id(cls, value: str) -> str:
        # Stored as the job id: one we could not store cannot be a prediction we started.
        if storable(value) != value:
            raise ValueError("prediction id holds control characters")
        return value

    @property
    def our_status(self) -> OurStatus:
        """Our status for it; a success without a video is a failure."""
        status = _STATUS_MAP[self.status]
        if status == "completed" and self.video_url is None:
            return "failed"
        return status

    @property
    def video_url(self) -> str | None:
        """The output URL (Wan models return one URL; some return a one-item list)."""
        out = self.output
        if isinstance(out, list) and out:
            out = out[-1]
        # A URL with a control character or a lone surrogate is no URL: no video (a refund).
        if isinstance(out, str) and out.startswith(("https://", "http://")):
            return out if storable(out) == out and " " not in out else None
        return None

    @property
    def error_message(self) -> str | None:
        if self.status == "aborted":
            return "The generation did not start before its deadline."
        if self.status == "succeeded" and self.video_url is None:
            return "The provider finished without a video."
        if self.error:
            # Whatever bytes the provider's message holds, the update (and its refund) applies.
            return storable(str(self.error), limit=1000) or "The provider reported an error."
        return None

    @property
    def progress(self) -> int | None:
        """Percent done, parsed from the last progress bar in the logs (tqdm style)."""
        if not self.logs:
            return None
        percents = _PERCENT.findall(self.logs)
        if percents:
            return min(int(percents[-1]), 100)
        steps = _STEPS.findall(self.logs)
        if steps:
            done, total = (int(x) for x in steps[-1])
            return min(100, done * 100 // total) if total else None
        return None


class Provider(Protocol):
    """What the lifecycle needs of a video provider."""

    async def create(
        self, offering: Offering, model_input: dict[str, JsonValue], webhook_url: str
    ) -> Prediction: ...

    async def get(self, job_id: str) -> Prediction: ...

    async def cancel(self, job_id: str) -> Prediction: ...

    async def aclose(self) -> None: ...


class ReplicateProvider:
    """Provider over the `replicate` client."""

    WEBHOOK_EVENTS = ("start", "logs", "completed")

    def __init__(
        self,
        client: Client,
        *,
        timeout_s: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = client
        self._timeout_s = timeout_s
        self._transport = transport

    @classmethod
    def from_settings(cls, settings: Settings) -> ReplicateProvider:
        import httpx
        from replicate.client import Client

        from shared.core.http import async_transport

        settings.require("replicate_api_token")
        assert settings.replicate_api_token is not None
        # Our own transport, so the connections can be closed at shutdown (the client has no
        # close of its own).
        transport = async_transport(limits=httpx.Limits(max_connections=100))
        client = Client(
            api_token=settings.replicate_api_token.get_secret_value(),
            transport=transport,
            base_url=settings.replicate_base_url,
            timeout=httpx.Timeout(settings.replicate_timeout_s, connect=5.0),
            # Replicate stops (cancels or aborts) a prediction still running at the deadline,
            # so a lost webhook or a dead sweeper never leaves one burning money forever.
            headers={"Cancel-After": f"{settings.prediction_deadline_s}s"},
        )
        return cls(client, timeout_s=settings.replicate_timeout_s, transport=transport)

    async def create(
        self, offering: Offering, model_input: dict[str, JsonValue], webhook_url: str
    ) -> Prediction:
        async def call() -> Prediction:
            made = await self._create(offering, model_input, webhook_url)
            return Prediction.model_validate(
                {"id": made.id, "status": made.status, "output": made.output,
                 "error": made.error, "logs": made.logs}
            )  # fmt: skip

        return await _translated(call, self._timeout_s)

    async def _create(
        self, offering: Offering, model_input: dict[str, JsonValue], webhook_url: str
    ) -> ReplicatePrediction:
        return await self._client.models.predictions.async_create(
            model=offering.replicate_model,
            input=model_input,
            webhook=webhook_url,
            webhook_events_filter=list(self.WEBHOOK_EVENTS),
        )

    async def aclose(self) -> None:
        if self._transport is not None:
            await self._transport.aclose()

    async def get(self, job_id: str) -> Prediction:
        return await self._raw("GET", f"/v1/predictions/{job_id}")

    async def cancel(self, job_id: str) -> Prediction:
        return await self._raw("POST", f"/v1/predictions/{job_id}/cancel")

    async def _raw(self, method: str, path: str) -> Prediction:
        async def call() -> Prediction:
            response = await self._client._async_request(method, path)
            return Prediction.model_validate(response.json())

        return await _translated(call, self._timeout_s)


async def _translated(call: Callable[[], Awaitable[T]], timeout_s: float) -> T:
    """Run a provider call within `timeout_s` in all; translate every foreign failure into a
    domain error. The whole call is bounded, not each attempt: the client sends creates with no
    timeout at all, and retries GETs on 429/5xx with backoff for up to a minute, which a status
    request must not wait out."""
    import httpx
    from replicate.exceptions import ReplicateError

    try:
        async with asyncio.timeout(timeout_s):
            return await call()
    except ReplicateError as exc:
        status = exc.status or 0
        if status == 429 or status >= 500:
            raise ProviderUnavailable(
                f"The video provider is busy or down (HTTP {status}).", provider_status=status
            ) from exc
        raise ProviderError(
            f"The video provider refused the request (HTTP {status}): {exc.detail or exc.title}",
            provider_status=status,
        ) from exc
    except (httpx.TimeoutException, TimeoutError) as exc:
        raise ProviderUnavailable("The video provider did not answer in time.") from exc
    except httpx.HTTPError as exc:
        raise ProviderUnavailable("The video provider could not be reached.") from exc
    except (ValidationError, ValueError) as exc:
        raise ProviderError("The video provider sent an answer we could not read.") from exc
