"""A local Stripe: the part of Stripe's API this project uses, for the real `stripe` library.

    POST /v1/checkout/sessions               create (form-encoded, as the library sends it)
    GET  /v1/checkout/sessions[/{id}]        list / retrieve
    POST /v1/checkout/sessions/{id}/expire   expire an open session
    GET  /v1/payment_intents/{id}            retrieve (its status after an async payment)
    POST /v1/refunds                         refund a payment (payment_intent, amount?)
    GET  /c/pay/{id}                         the hosted checkout page: a Pay button...
    POST /c/pay/{id}                         ...whose form posts here and completes the payment
    GET  /c/done, /c/canceled                the local stack's success and cancel pages

Test and operator controls (faults, disputes, what was sent) are in local/stripe_controls.py.

Errors have Stripe's shape, `{"error": {"type", "message"}}`; a replayed `Idempotency-Key`
returns the first answer, and one replayed with other parameters is refused (400
idempotency_error), as Stripe refuses it.
"""

from __future__ import annotations

import hmac
import html
import time
from collections.abc import Callable
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import FastAPI, Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import JsonValue

from local.serve import engine_lifespan
from local.stripe_controls import StripeProblem, controls_router
from local.stripe_engine import (
    Json,
    Session,
    StripeEmulatorConfig,
    StripeEngine,
    new_id,
)


def decode_form(body: bytes) -> Json:
    """Stripe's form encoding (`a[b][0][c]=v`) back into nested objects and lists."""
    root: dict[str, JsonValue] = {}
    for key, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True):
        parts = key.replace("]", "").split("[")
        node = root
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise StripeProblem(400, f"Invalid parameter: {key}")
            node = child
        node[parts[-1]] = value
    listed = _lists(root)
    assert isinstance(listed, dict)
    return listed


def _lists(value: JsonValue) -> JsonValue:
    if isinstance(value, dict):
        items = {k: _lists(v) for k, v in value.items()}
        if items and all(k.isdigit() for k in items):
            return [items[k] for k in sorted(items, key=int)]
        return items
    return value


def _int(value: JsonValue, name: str) -> int:
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise StripeProblem(400, f"Invalid integer: {name}")


def create_stripe_emulator_app(config: StripeEmulatorConfig) -> FastAPI:
    engine = StripeEngine(config)
    replies: dict[str, tuple[Json, Json]] = {}  # key -> (the first request's params, answer)

    app = FastAPI(title="Stripe emulator", lifespan=engine_lifespan(engine))
    app.state.engine = engine

    @app.exception_handler(StripeProblem)
    async def on_problem(_: Request, exc: StripeProblem) -> JSONResponse:
        return JSONResponse(
            {"error": {"type": exc.kind, "message": exc.message}}, status_code=exc.status
        )

    def authorized(authorization: str | None) -> None:
        expected = f"Bearer {config.api_key}".encode()
        if not authorization or not hmac.compare_digest(authorization.encode(), expected):
            raise StripeProblem(401, "Invalid API Key provided.", "authentication_error")

    def found(session_id: str) -> Session:
        session = engine.state.sessions.get(session_id)
        if session is None:
            raise StripeProblem(404, f"No such checkout.session: '{session_id}'")
        return session

    async def idempotent(request: Request, make: Callable[[Json], Json]) -> JSONResponse:
        key = request.headers.get("idempotency-key")
        params = decode_form(await request.body())
        if key and key in replies:
            first, body = replies[key]
            if params != first:
                raise StripeProblem(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters "
                    "they were first used with.",
                    "idempotency_error",
                )
            return JSONResponse(body)
        body = make(params)
        if key:
            replies[key] = (params, body)
        return JSONResponse(body)

    @app.post("/v1/checkout/sessions")
    async def create_session(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> JSONResponse:
        authorized(authorization)
        base = str(request.base_url).rstrip("/")

        def make(params: Json) -> Json:
            items = params.get("line_items")
            if params.get("mode") != "payment" or not isinstance(items, list) or not items:
                raise StripeProblem(400, "mode=payment and line_items are required.")
            amount, currency = 0, None
            for item in items:
                if not isinstance(item, dict):
                    raise StripeProblem(400, "Invalid line_items.")
                quantity = _int(item.get("quantity", "1"), "quantity")
                if "price" in item:
                    price = config.prices.get(str(item["price"]))
                    if price is None:
                        raise StripeProblem(404, f"No such price: '{item['price']}'")
                    unit, currency = price
                else:
                    data = item.get("price_data")
                    if not isinstance(data, dict):
                        raise StripeProblem(400, "Each line item needs price or price_data.")
                    unit = _int(data.get("unit_amount"), "unit_amount")
                    currency = str(data.get("currency", "")).lower()
                amount += unit * quantity
            session_id = new_id("cs")
            intent_data = params.get("payment_intent_data")
            intent_metadata = intent_data.get("metadata") if isinstance(intent_data, dict) else {}
            session = Session(
                data={
                    "id": session_id,
                    "object": "checkout.session",
                    "mode": "payment",
                    "status": "open",
                    "payment_status": "unpaid",
                    "url": f"{base}/c/pay/{session_id}",
                    "amount_subtotal": amount,
                    "amount_total": amount,
                    "currency": currency,
                    "client_reference_id": params.get("client_reference_id"),
                    "metadata": params.get("metadata") or {},
                    "success_url": params.get("success_url"),
                    "cancel_url": params.get("cancel_url"),
                    "payment_intent": None,
                    "created": int(time.time()),
                    "expires_at": _int(params["expires_at"], "expires_at")
                    if "expires_at" in params
                    else int(time.time()) + 24 * 3600,
                    "livemode": False,
                },
                intent_metadata=intent_metadata if isinstance(intent_metadata, dict) else {},
            )
            engine.state.sessions[session_id] = session
            return session.data

        return await idempotent(request, make)

    @app.get("/v1/checkout/sessions")
    async def list_sessions(
        authorization: Annotated[str | None, Header()] = None,
        payment_intent: str | None = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> Json:
        authorized(authorization)
        found_ = [
            s.data
            for s in reversed(engine.state.sessions.values())
            if payment_intent is None or s.payment_intent == payment_intent
        ]
        data: list[JsonValue] = list(found_[:limit])
        return {
            "object": "list",
            "data": data,
            "has_more": len(found_) > limit,
            "url": "/v1/checkout/sessions",
        }

    @app.get("/v1/checkout/sessions/{session_id}")
    async def get_session(
        session_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> Json:
        authorized(authorization)
        return found(session_id).data

    @app.post("/v1/checkout/sessions/{session_id}/expire")
    async def expire_session(
        session_id: str, authorization: Annotated[str | None, Header()] = None
    ) -> Json:
        authorized(authorization)
        session = found(session_id)
        if session.data["status"] != "open":
            raise StripeProblem(
                400, f"Only open sessions can be expired ({session.data['status']})."
            )
        engine.expire(session)
        return session.data

    @app.get("/v1/payment_intents/{intent}")
    async def get_payment_intent(
        intent: str, authorization: Annotated[str | None, Header()] = None
    ) -> Json:
        authorized(authorization)
        session_id = engine.state.by_intent.get(intent)
        if session_id is None:
            raise StripeProblem(404, f"No such payment_intent: '{intent}'")
        session = engine.state.sessions[session_id]
        return {
            "id": intent,
            "object": "payment_intent",
            "amount": session.data["amount_total"],
            "currency": session.data["currency"],
            "status": session.intent_status,
            "metadata": session.intent_metadata,
        }

    @app.post("/v1/refunds")
    async def create_refund(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> JSONResponse:
        authorized(authorization)

        def make(params: Json) -> Json:
            intent = str(params.get("payment_intent", ""))
            session_id = engine.state.by_intent.get(intent)
            if session_id is None:
                raise StripeProblem(404, f"No such payment_intent: '{intent}'")
            amount = _int(params["amount"], "amount") if "amount" in params else None
            try:
                return engine.refund(engine.state.sessions[session_id], amount)
            except ValueError as exc:
                raise StripeProblem(400, str(exc)) from exc

        return await idempotent(request, make)

    @app.get("/c/pay/{session_id}", response_class=HTMLResponse)
    async def checkout_page(session_id: str) -> HTMLResponse:
        data = found(session_id).data
        amount = data["amount_total"]
        assert isinstance(amount, int)
        price = f"{amount / 100:.2f} {str(data['currency']).upper()}"
        action = html.escape(f"/c/pay/{session_id}")
        state = html.escape(str(data["status"]))
        return HTMLResponse(
            "<!doctype html><html><head><title>Checkout (local Stripe)</title></head><body>"
            f"<h1>Pay {html.escape(price)}</h1><p>Session status: {state}</p>"
            f'<form method="post" action="{action}"><button type="submit">Pay</button></form>'
            "</body></html>"
        )

    @app.post("/c/pay/{session_id}")
    async def pay(session_id: str) -> Response:
        session = found(session_id)
        if session.data["status"] != "open":
            return HTMLResponse(
                f"<p>This checkout is {html.escape(str(session.data['status']))}.</p>",
                status_code=409,
            )
        engine.pay(session)
        target = str(session.data.get("success_url") or "/")
        return RedirectResponse(target.replace("{CHECKOUT_SESSION_ID}", session_id), 303)

    @app.get("/c/done", response_class=HTMLResponse)
    async def done(session_id: str = "") -> HTMLResponse:
        """Where the local stack sends the buyer back (the frontend's page in production)."""
        return HTMLResponse(
            f"<p>Payment for {html.escape(session_id[:80])} complete; the credits arrive with "
            "the webhook. You can close this page.</p>"
        )

    @app.get("/c/canceled", response_class=HTMLResponse)
    async def canceled() -> HTMLResponse:
        return HTMLResponse("<p>Checkout canceled; nothing was charged.</p>")

    app.include_router(controls_router(engine, found))
    return app
