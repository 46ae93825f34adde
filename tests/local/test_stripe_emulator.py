"""The Stripe emulator, driven by the real `stripe` library (no API of ours involved)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import stripe
from fastapi import FastAPI, Request

from local.serve import serve
from local.stripe_emulator import create_stripe_emulator_app, decode_form
from local.stripe_engine import StripeEmulatorConfig
from shared.payments.signature import verify

KEY = "sk_test_emulator"
SECRET = "whsec_emulator_secret"


@pytest.fixture
def received() -> list[tuple[dict[str, object], str]]:
    return []


@pytest.fixture
def receiver_url(received: list[tuple[dict[str, object], str]]) -> Iterator[str]:
    """A webhook receiver that checks each signature and keeps the events."""
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> dict[str, bool]:
        body = await request.body()
        verify(SECRET, request.headers.get("stripe-signature"), body, now=time.time())
        received.append((json.loads(body), request.headers["stripe-signature"]))
        return {"ok": True}

    with serve(app) as url:
        yield url + "/hook"


@pytest.fixture
def emulator_url(receiver_url: str) -> Iterator[str]:
    config = StripeEmulatorConfig(
        api_key=KEY,
        webhook_secret=SECRET,
        webhook_url=receiver_url,
        prices={"price_small": (500, "usd")},
        seed=3,
    )
    with serve(create_stripe_emulator_app(config)) as url:
        yield url


@pytest.fixture
async def client(emulator_url: str) -> AsyncIterator[stripe.StripeClient]:
    http = stripe.HTTPXClient()
    yield stripe.StripeClient(KEY, base_addresses={"api": emulator_url}, http_client=http)
    await http.close_async()  # type: ignore[no-untyped-call]


async def settled(emulator_url: str) -> None:
    async with httpx.AsyncClient(base_url=emulator_url) as http:
        assert (await http.get("/__emulator/settled")).json() == {"settled": True}


SESSION = {
    "mode": "payment",
    "line_items": [{"price": "price_small", "quantity": 2}],
    "client_reference_id": "ours-1",
    "metadata": {"purchase_id": "ours-1"},
    "payment_intent_data": {"metadata": {"purchase_id": "ours-1"}},
    "success_url": "http://app.test/ok?s={CHECKOUT_SESSION_ID}",
    "cancel_url": "http://app.test/no",
}


def test_form_encoding_decodes_into_nested_objects_and_lists() -> None:
    body = b"a[b][0][c]=1&a[b][1][c]=2&m[k]=v&x=y"
    assert decode_form(body) == {"a": {"b": [{"c": "1"}, {"c": "2"}]}, "m": {"k": "v"}, "x": "y"}


async def test_create_retrieve_list_and_expire_sessions(client: stripe.StripeClient) -> None:
    created = await client.v1.checkout.sessions.create_async(SESSION)  # type: ignore[arg-type]
    assert (created.status, created.amount_total, created.currency) == ("open", 1000, "usd")
    fetched = await client.v1.checkout.sessions.retrieve_async(created.id)
    assert fetched.client_reference_id == "ours-1"
    listed = await client.v1.checkout.sessions.list_async({"limit": 5})
    assert [s.id for s in listed.data] == [created.id]
    expired = await client.v1.checkout.sessions.expire_async(created.id)
    assert expired.status == "expired"
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.checkout.sessions.expire_async(created.id)


async def test_idempotency_key_returns_the_same_session(client: stripe.StripeClient) -> None:
    first = await client.v1.checkout.sessions.create_async(
        SESSION,  # type: ignore[arg-type]
        {"idempotency_key": "same"},
    )
    again = await client.v1.checkout.sessions.create_async(
        SESSION,  # type: ignore[arg-type]
        {"idempotency_key": "same"},
    )
    assert again.id == first.id


async def test_wrong_key_and_unknown_objects_are_stripe_errors(
    client: stripe.StripeClient, emulator_url: str
) -> None:
    http = stripe.HTTPXClient()
    wrong = stripe.StripeClient("sk_wrong", base_addresses={"api": emulator_url}, http_client=http)
    with pytest.raises(stripe.AuthenticationError):
        await wrong.v1.checkout.sessions.retrieve_async("cs_x")
    await http.close_async()  # type: ignore[no-untyped-call]
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.checkout.sessions.retrieve_async("cs_missing")
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.refunds.create_async({"payment_intent": "pi_missing"})


async def test_pay_button_completes_and_refunds_send_signed_events(
    client: stripe.StripeClient,
    emulator_url: str,
    received: list[tuple[dict[str, object], str]],
) -> None:
    created = await client.v1.checkout.sessions.create_async(SESSION)  # type: ignore[arg-type]
    assert created.url is not None
    async with httpx.AsyncClient() as browser:
        page = await browser.get(created.url)
        assert f'action="/c/pay/{created.id}"' in page.text
        paid = await browser.post(created.url)
    assert paid.status_code == 303
    assert paid.headers["location"] == f"http://app.test/ok?s={created.id}"
    session = await client.v1.checkout.sessions.retrieve_async(created.id)
    assert (session.status, session.payment_status) == ("complete", "paid")
    assert isinstance(session.payment_intent, str)
    refund = await client.v1.refunds.create_async(
        {"payment_intent": session.payment_intent, "amount": 300}
    )
    assert refund.amount == 300
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.refunds.create_async(
            {"payment_intent": session.payment_intent, "amount": 800}
        )
    await settled(emulator_url)
    events = [e for e, _ in received]
    assert [e["type"] for e in events] == ["checkout.session.completed", "charge.refunded"]
    charge = events[1]["data"]["object"]  # type: ignore[index]
    assert charge["amount_refunded"] == 300
    assert charge["metadata"] == {"purchase_id": "ours-1"}
