"""POST /api/webhooks/replicate?generation_id=...: Replicate's signed prediction updates.

The signature is checked on the raw body before anything is parsed (401 on any failure).
Unknown or finished generations get a 2xx so Replicate stops retrying; duplicates and
out-of-order deliveries are harmless because the state machine ignores them.

This is the busiest endpoint (Replicate posts a `logs` update about twice a second per running
prediction), so it skips what it does not need: it is served by an express lane
(shared.web.lanes: no routing, no dependency solving; the declared route is what the OpenAPI
document shows and answers through the same `answer`), the small answer is rendered directly
instead of through response-model validation, and progress ticks are logged at DEBUG (starts,
outcomes and ignored updates at INFO).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import ValidationError

from shared import wiring
from shared.core.config import Settings
from shared.core.errors import InvalidInput, NotFound
from shared.provider.replicate import Prediction
from shared.web.app import create_app as _create_app
from shared.web.lanes import Lane
from shared.web.registry import Registry, provided
from shared.web.schemas import WebhookAck, error_responses
from shared.web.signatures import verify
from shared.wiring import WebhookServices

if TYPE_CHECKING:
    from shared.core.domain import Generation
    from shared.flows.scheduling import CopyScheduler

log = logging.getLogger(__name__)
router = APIRouter()
PATH = "/api/webhooks/replicate"
# Starting the copy (Modal's spawn) must not hold the delivery past Replicate's patience.
SCHEDULE_TIMEOUT_S = 5.0


def _ack(ack: WebhookAck) -> Response:
    return Response(ack.model_dump_json(), media_type="application/json")


async def answer(registry: Registry, request: Request, _: str = "") -> Response:
    """Apply one prediction update."""
    services = provided(registry, WebhookServices)
    body = await request.body()
    verify(services.webhook_secret, request.headers, body, now=services.clock.now())

    raw_id = request.query_params.get("generation_id", "")
    try:
        generation_id = uuid.UUID(raw_id)
    except ValueError:
        log.warning("webhook without a valid generation_id: %r", raw_id[:64])
        return _ack(WebhookAck(applied=False))
    prediction = _prediction(body)

    try:
        applied = await services.updates.apply(generation_id, prediction, source="webhook")
    except NotFound:
        log.warning(
            "webhook for unknown generation (prediction %s)",
            prediction.id,
            extra={"generation_id": str(generation_id)},
        )
        return _ack(WebhookAck(applied=False))
    gen = applied.generation
    if applied.changed and gen.status == "completed":
        # Copy the video after answering: Replicate's retry clock is short, copies are not.
        await _schedule_copy(services.schedule_copy, gen)
    tick = prediction.status == "processing" and gen.status == "processing" and applied.changed
    log.log(
        logging.DEBUG if tick else logging.INFO,
        "webhook %s -> %s (changed=%s, refunded=%s)",
        prediction.status,
        gen.status,
        applied.changed,
        applied.refunded,
        extra={"generation_id": str(gen.id)},
    )
    return _ack(WebhookAck(applied=applied.changed, status=gen.status))


LANE = Lane("POST", PATH, answer, param=False)


@router.post(PATH, response_model=WebhookAck, responses=error_responses(401, 413, 422, 503))
async def replicate_webhook(request: Request) -> Response:
    """Apply one prediction update."""
    return await answer(request.app.state.services, request)


async def _schedule_copy(schedule: CopyScheduler, gen: Generation) -> None:
    """Start the copy, bounded. The update is already applied, so a failure here must not fail
    the delivery: Replicate's retry would find nothing changed and schedule nothing, while the
    sweep retries every completed video not yet kept (claim_pending_copies)."""
    try:
        async with asyncio.timeout(SCHEDULE_TIMEOUT_S):
            await schedule(gen)
    # Modal's spawn fails in ways of its own (its API, its client); the sweep heals them all.
    except Exception as exc:  # noqa: BLE001
        log.warning(
            "could not start the video copy (the sweep retries it): %r",
            exc,
            extra={"generation_id": str(gen.id)},
        )


def _prediction(body: bytes) -> Prediction:
    try:
        return Prediction.model_validate_json(body)
    except ValidationError:
        pass
    try:
        # pydantic's JSON parser refuses a lone surrogate escape (\ud800), which JSON allows and
        # a model's logs or error may hold; Python's parser takes it, and Prediction cleans it.
        return Prediction.model_validate(json.loads(body))
    except ValueError as exc:  # invalid JSON or UTF-8, or not a prediction
        raise InvalidInput("The webhook payload is not a prediction object.") from exc


def create_app(
    settings: Settings | None = None, *, schedule_copy: CopyScheduler | None = None
) -> FastAPI:
    """`schedule_copy`: how a completed video gets copied (Modal spawns a function); by default
    a background task of this process."""
    return _create_app(
        router, open_services=wiring.webhook(schedule_copy), settings=settings, lanes=[LANE]
    )
