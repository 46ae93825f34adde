"""POST /api/webhooks/replicate?generation_id=...: Replicate's signed prediction updates.

The signature is checked on the raw body before anything is parsed (401 on any failure).
Unknown or finished generations get a 2xx so Replicate stops retrying; duplicates and
out-of-order deliveries are harmless because the state machine ignores them.

This is the busiest endpoint (Replicate posts a `logs` update about twice a second per running
prediction), so it skips what it does not need: services come from the app state rather than
a dependency, the small answer is rendered directly instead of through response-model
validation, and progress ticks are logged at DEBUG (starts, outcomes and ignored updates at
INFO).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import ValidationError

from shared.core.errors import InvalidInput, NotFound
from shared.provider.replicate import Prediction
from shared.web.app import create_app as _create_app
from shared.web.schemas import WebhookAck, error_responses
from shared.web.signatures import verify
from shared.wiring import Services

log = logging.getLogger(__name__)
router = APIRouter()


def _ack(ack: WebhookAck) -> Response:
    return Response(ack.model_dump_json(), media_type="application/json")


@router.post(
    "/api/webhooks/replicate",
    response_model=WebhookAck,
    responses=error_responses(401, 413, 422),
)
async def replicate_webhook(request: Request) -> Response:
    """Apply one prediction update."""
    services: Services = request.app.state.services
    body = await request.body()
    verify(services.webhook_secret, request.headers, body, now=time.time())

    raw_id = request.query_params.get("generation_id", "")
    try:
        generation_id = uuid.UUID(raw_id)
    except ValueError:
        log.warning("webhook without a valid generation_id: %r", raw_id[:64])
        return _ack(WebhookAck(applied=False))
    try:
        prediction = Prediction.model_validate_json(body)
    except ValidationError as exc:
        raise InvalidInput("The webhook payload is not a prediction object.") from exc

    try:
        applied = await services.lifecycle.apply_update(generation_id, prediction, source="webhook")
    except NotFound:
        log.warning(
            "webhook for unknown generation (prediction %s)",
            prediction.id,
            extra={"generation_id": str(generation_id)},
        )
        return _ack(WebhookAck(applied=False))
    gen = applied.generation
    if applied.changed and gen.status == "completed" and services.schedule_keep is not None:
        # Copy the video after answering: Replicate's retry clock is short, copies are not.
        await services.schedule_keep(gen)
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


def create_app(configure: Callable[[Services], None] | None = None) -> FastAPI:
    return _create_app(router, configure=configure)
