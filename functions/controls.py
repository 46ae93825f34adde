"""The owner's controls: cancel, retry, history, credits, and buying credits.

POST /api/generation/{id}/cancel    queued or running -> canceled, refunded once
POST /api/generation/{id}/retry     failed or canceled -> a new generation, a new charge
GET  /api/generation/history        newest first, cursor pagination
GET  /api/credits                   balance, low-balance flag, recent ledger entries
GET  /api/credits/packs             the credit packs for sale
POST /api/credits/checkout          a Stripe Checkout Session for a pack (pending purchase)
GET  /api/credits/purchases         the caller's purchases, newest first
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Response, status

from shared import wiring
from shared.core.config import Settings
from shared.core.errors import InvalidInput
from shared.web.answers import created_answer, parse_generation_id
from shared.web.app import create_app as _create_app
from shared.web.deps import IdempotencyKey, User
from shared.web.purchase_schemas import CheckoutIn, CheckoutOut, PackOut, PurchaseOut
from shared.web.registry import services_of
from shared.web.schemas import (
    REPLAYED,
    CreatedOut,
    CreditsOut,
    GenerationOut,
    HistoryOut,
    LedgerEntry,
    error_responses,
)
from shared.wiring import ControlServices, PaymentServices

router = APIRouter()
Services = Annotated[ControlServices, Depends(services_of(ControlServices))]
Payments = Annotated[PaymentServices, Depends(services_of(PaymentServices))]


@router.post(
    "/api/generation/{generation_id}/cancel", responses=error_responses(401, 404, 409, 503)
)
async def cancel_generation(generation_id: str, user: User, services: Services) -> GenerationOut:
    """Cancel a queued or running generation. 409 if it already finished."""
    gen = await services.lifecycle.cancel(user.id, parse_generation_id(generation_id))
    return GenerationOut.from_generation(gen, video_url=await services.links.view_url(gen))


@router.post(
    "/api/generation/{generation_id}/retry",
    status_code=status.HTTP_201_CREATED,
    responses={**REPLAYED, **error_responses(401, 402, 404, 409, 429, 502, 503)},
)
async def retry_generation(
    generation_id: str, user: User, services: Services, key: IdempotencyKey, response: Response
) -> CreatedOut:
    """Submit a failed or canceled generation again with the same inputs (charged again)."""
    submitted = await services.lifecycle.retry(
        user.id, parse_generation_id(generation_id), idempotency_key=key
    )
    return created_answer(submitted, response)


# A cursor is the last row's key: `<created_at in microseconds since 1970>_<generation id>`.
# Its format is in the OpenAPI document (a pattern), so any cursor the document allows decodes.
CURSOR_PATTERN = r"^[0-9]{1,16}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def encode_cursor(created_at: datetime, generation_id: uuid.UUID) -> str:
    return f"{(created_at - _EPOCH) // _MICROSECOND}_{generation_id}"


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The key in a cursor; the route's pattern already refused anything malformed."""
    if not re.fullmatch(CURSOR_PATTERN, cursor):
        raise InvalidInput("The cursor is not valid.", field="cursor")
    micros, generation_id = cursor.split("_", 1)
    return _EPOCH + int(micros) * _MICROSECOND, uuid.UUID(generation_id)


@router.get("/api/generation/history", responses=error_responses(401, 422, 503))
async def generation_history(
    user: User,
    services: Services,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[
        str | None,
        Query(
            pattern=CURSOR_PATTERN,
            description="`next_cursor` of the previous page: "
            "`<created_at, microseconds since 1970>_<generation id>`.",
        ),
    ] = None,
) -> HistoryOut:
    """The caller's generations, newest first."""
    before = decode_cursor(cursor) if cursor else None
    gens = await services.db.list_generations(user.id, limit=limit, before=before)
    next_cursor = encode_cursor(gens[-1].created_at, gens[-1].id) if len(gens) == limit else None
    urls = await asyncio.gather(*(services.links.view_url(g) for g in gens))
    return HistoryOut(
        items=[
            GenerationOut.from_generation(g, video_url=u) for g, u in zip(gens, urls, strict=True)
        ],
        next_cursor=next_cursor,
    )


@router.get("/api/credits", responses=error_responses(401, 422, 503))
async def credits(
    user: User, services: Services, limit: Annotated[int, Query(ge=0, le=100)] = 20
) -> CreditsOut:
    """Balance, a low-balance flag and the most recent ledger entries."""
    balance, entries = await services.db.get_credits(user.id, limit=limit)
    threshold = services.low_balance_threshold
    return CreditsOut(
        balance=balance,
        low_balance=balance < threshold,
        low_balance_threshold=threshold,
        cheapest_cost=services.catalog.cheapest_cost(),
        transactions=[LedgerEntry.model_validate(e) for e in entries],
    )


# --- payments (issue #13) -------------------------------------------------------------------


@router.get("/api/credits/packs", responses=error_responses(401))
async def credit_packs(_: User, payments: Payments) -> list[PackOut]:
    """The credit packs for sale (amount in the currency's minor unit)."""
    return [PackOut.from_pack(p) for p in payments.purchases.packs.items]


@router.post(
    "/api/credits/checkout",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 403, 409, 422, 429, 502, 503),
)
async def credit_checkout(
    body: CheckoutIn, user: User, payments: Payments, key: IdempotencyKey
) -> CheckoutOut:
    """Start buying a pack: a pending purchase and its Stripe Checkout Session. Send the buyer
    to `checkout_url`; the credits arrive with Stripe's webhook. 403 when the account is on
    hold, 429 past CREATE_RATE_PER_MINUTE (checkouts share the creates' limit). A replayed
    Idempotency-Key returns the same purchase and session."""
    purchase = await payments.purchases.checkout(user.id, body.pack, idempotency_key=key)
    assert purchase.session_id is not None
    return CheckoutOut(
        purchase_id=purchase.id,
        session_id=purchase.session_id,
        checkout_url=purchase.checkout_url or "",
    )


@router.get("/api/credits/purchases", responses=error_responses(401))
async def credit_purchases(
    user: User, payments: Payments, limit: Annotated[int, Query(ge=1, le=100)] = 50
) -> list[PurchaseOut]:
    """The caller's purchases, newest first."""
    found = await payments.purchases.store.list_purchases(user.id, limit=limit)
    return [PurchaseOut.from_purchase(p) for p in found]


def create_app(settings: Settings | None = None) -> FastAPI:
    return _create_app(router, open_services=wiring.controls, settings=settings)
