"""POST /api/webhooks/stripe: Stripe's signed events (its own Modal web function).

The `Stripe-Signature` header is verified on the raw body before anything is parsed (400 on
any failure, and nothing changes). Then the event is reduced to its facts and applied in ONE
SQL call that records its id, so a replay, a concurrent duplicate or an event arriving out of
order changes nothing it should not. Events we do not act on are recorded and answered 200.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response

from shared import wiring
from shared.core.config import Settings
from shared.payments.events import parse_event
from shared.payments.signature import HEADER, verify
from shared.web.app import create_app as _create_app
from shared.web.purchase_schemas import StripeAck
from shared.web.registry import provided
from shared.web.schemas import error_responses
from shared.wiring import StripeWebhookServices

router = APIRouter()


@router.post(
    "/api/webhooks/stripe",
    response_model=StripeAck,
    responses=error_responses(400, 413, 422),
)
async def stripe_webhook(request: Request) -> Response:
    """Apply one Stripe event, exactly once."""
    services = provided(request.app.state.services, StripeWebhookServices)
    body = await request.body()
    verify(services.webhook_secret, request.headers.get(HEADER), body, now=services.clock.now())
    outcome = await services.purchases.apply_event(parse_event(body))
    ack = StripeAck(outcome=outcome.outcome, duplicate=outcome.duplicate)
    return Response(ack.model_dump_json(), media_type="application/json")


def create_app(settings: Settings | None = None) -> FastAPI:
    return _create_app(
        router,
        open_services=wiring.stripe_webhook,
        settings=settings,
        title="Wan video generation API: Stripe webhook",
    )
