"""Buying credits end to end: the API, the Stripe emulator, the real `stripe` library.

The API creates Checkout Sessions through stripe.StripeClient against the emulator; the tests
also use the library (as Stripe's own dashboard or a support script would) to read sessions
and to create refunds. Webhooks are the emulator's, signed as Stripe signs them, with its fault
knobs. The ledger invariants are checked after every test (tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import cast

import httpx
import pytest
import stripe
from pydantic import SecretStr

from local.secrets import LocalSecrets
from local.serve import serve
from local.stack import NO_STRIPE_URL, STRIPE_WEBHOOK_PATH
from local.stripe_emulator import create_stripe_emulator_app
from local.stripe_engine import StripeEmulatorConfig
from shared.core.config import Settings
from shared.core.errors import Conflict, PaymentProviderError, PaymentProviderUnavailable
from shared.flows.purchases import Purchases
from shared.payments.gateway import (
    CheckoutOrder,
    CheckoutSession,
    PaymentGateway,
    StripeGateway,
)
from shared.payments.packs import DEFAULT_PACKS
from shared.payments.signature import signature_header
from shared.wiring import SweepServices as Services
from tests.functions.conftest import Stack
from tests.support import balance

Json = dict[str, object]


@pytest.fixture
def stripe_url(api_base_url: str, secrets: LocalSecrets) -> Iterator[str]:
    config = StripeEmulatorConfig(
        api_key=secrets.stripe_secret_key,
        webhook_secret=secrets.stripe_webhook_secret,
        webhook_url=api_base_url + STRIPE_WEBHOOK_PATH,
        seed=11,
        webhook_retry_delays_s=(0.05, 0.1),
    )
    with serve(create_stripe_emulator_app(config)) as url:
        yield url


@pytest.fixture
def settings_overrides(stripe_url: str) -> dict[str, object]:
    # Reconciliation may ask about a purchase as soon as it exists (tests need no waiting).
    return {
        "replicate_timeout_s": 2.0,
        "stripe_base_url": stripe_url,
        "purchase_reconcile_after_s": 0,
    }


@pytest.fixture
async def stripe_emulator(stripe_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stripe_url, timeout=20) as client:
        yield client


@pytest.fixture
async def stripe_client(
    stripe_url: str, secrets: LocalSecrets
) -> AsyncIterator[stripe.StripeClient]:
    http = stripe.HTTPXClient()
    yield stripe.StripeClient(
        secrets.stripe_secret_key, base_addresses={"api": stripe_url}, http_client=http
    )
    await http.close_async()  # type: ignore[no-untyped-call]


async def faults(emulator: httpx.AsyncClient, **changes: object) -> None:
    response = await emulator.post("/__emulator/faults", json=changes)
    assert response.status_code == 200, response.text


async def settled(emulator: httpx.AsyncClient) -> None:
    response = await emulator.get("/__emulator/settled", params={"wait": 15})
    assert response.json() == {"settled": True}


async def checkout(stack: Stack, headers: dict[str, str], pack: str = "small") -> Json:
    response = await stack.api.post("/api/credits/checkout", json={"pack": pack}, headers=headers)
    assert response.status_code == 201, response.text
    body: Json = response.json()
    return body


async def press_pay(emulator: httpx.AsyncClient, checkout_url: str) -> None:
    """Open the hosted page and submit its Pay form, as a browser would."""
    page = await emulator.get(checkout_url)
    assert page.status_code == 200
    assert 'method="post"' in page.text
    assert ">Pay</button>" in page.text
    paid = await emulator.post(checkout_url)
    assert paid.status_code == 303, paid.text


async def pay(stack: Stack, emulator: httpx.AsyncClient, headers: dict[str, str]) -> Json:
    """Check out the small pack, pay on the hosted page, and wait until its webhooks went."""
    started = await checkout(stack, headers)
    await press_pay(emulator, str(started["checkout_url"]))
    await settled(emulator)
    return started


async def paid_with_faults(
    stack: Stack, emulator: httpx.AsyncClient, **knobs: object
) -> tuple[uuid.UUID, dict[str, str], Json]:
    """A user with no credits who bought the small pack, with the Stripe emulator's fault
    knobs set first: the user, their headers and the checkout, once its webhooks went."""
    user, headers = await stack.user(credits=0)
    await faults(emulator, **knobs)
    return user, headers, await pay(stack, emulator, headers)


async def deliver(stack: Stack, secrets: LocalSecrets, event: Json) -> httpx.Response:
    """Post an event to the webhook endpoint, signed now as Stripe signs it."""
    body = json.dumps(event).encode()
    header = signature_header(secrets.stripe_webhook_secret, int(time.time()), body)
    return await stack.api.post(
        STRIPE_WEBHOOK_PATH, content=body, headers={"Stripe-Signature": header}
    )


async def refund(client: stripe.StripeClient, checkout: Json, amount: int | None = None) -> None:
    """Refund the checkout's payment through the library (all of it unless `amount`)."""
    session = await client.v1.checkout.sessions.retrieve_async(str(checkout["session_id"]))
    assert isinstance(session.payment_intent, str)
    if amount is None:
        await client.v1.refunds.create_async({"payment_intent": session.payment_intent})
    else:
        await client.v1.refunds.create_async(
            {"payment_intent": session.payment_intent, "amount": amount}
        )


async def purchases(stack: Stack, headers: dict[str, str]) -> list[Json]:
    response = await stack.api.get("/api/credits/purchases", headers=headers)
    assert response.status_code == 200, response.text
    found: list[Json] = response.json()
    return found


async def test_checkout_pay_and_the_balance_rises(
    stack: Stack, stripe_emulator: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    user, headers = await stack.user(credits=0)
    packs = (await stack.api.get("/api/credits/packs", headers=headers)).json()
    assert packs[0] == {"id": "small", "credits": 100, "amount": 500, "currency": "usd"}
    started = await checkout(stack, headers)
    session = await stripe_client.v1.checkout.sessions.retrieve_async(str(started["session_id"]))
    assert session.client_reference_id == started["purchase_id"]
    # By attribute: a StripeObject is a dict only up to stripe-python 14.
    metadata = [getattr(session.metadata, k) for k in ("purchase_id", "user_id", "pack")]
    assert metadata == [started["purchase_id"], str(user), "small"]
    assert (session.amount_total, session.currency, session.mode) == (500, "usd", "payment")
    assert 3500 <= session.expires_at - time.time() <= 3600
    assert (await purchases(stack, headers))[0]["status"] == "pending"

    await press_pay(stripe_emulator, str(started["checkout_url"]))
    await settled(stripe_emulator)
    assert await balance(stack.admin, user) == 100
    [bought] = await purchases(stack, headers)
    assert (bought["status"], bought["credits"]) == ("paid", 100)


async def test_replayed_checkout_key_returns_the_same_session(stack: Stack) -> None:
    _, headers = await stack.user()
    keyed = {**headers, "Idempotency-Key": "buy-1"}
    first = await checkout(stack, keyed)
    again = await checkout(stack, keyed)
    assert again == first
    assert len(await purchases(stack, headers)) == 1


async def test_unknown_pack_is_a_clear_422(stack: Stack) -> None:
    _, headers = await stack.user()
    response = await stack.api.post("/api/credits/checkout", json={"pack": "huge"}, headers=headers)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_input"
    assert "available: small, medium, large" in response.json()["detail"]


async def test_bad_signature_is_400_and_changes_nothing(
    stack: Stack, stripe_emulator: httpx.AsyncClient, secrets: LocalSecrets
) -> None:
    user, _, _ = await paid_with_faults(stack, stripe_emulator, webhook_drop_rate=1.0)
    event = (await stripe_emulator.get("/__emulator/events")).json()[-1]
    body = json.dumps(event).encode()
    stale = signature_header(secrets.stripe_webhook_secret, int(time.time()) - 600, body)
    for header in (
        "t=1,v1=00",
        "garbage",
        stale,
        signature_header("whsec_other", int(time.time()), body),
    ):
        response = await stack.api.post(
            STRIPE_WEBHOOK_PATH, content=body, headers={"Stripe-Signature": header}
        )
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_signature"
    assert await balance(stack.admin, user) == 0


async def test_twenty_concurrent_deliveries_and_two_more_events_grant_once(
    stack: Stack, stripe_emulator: httpx.AsyncClient, secrets: LocalSecrets
) -> None:
    user, _, _ = await paid_with_faults(stack, stripe_emulator, webhook_drop_rate=1.0)
    [completed] = [
        e for e in (await stripe_emulator.get("/__emulator/events")).json()
        if e["type"] == "checkout.session.completed"
    ]  # fmt: skip
    others = [
        {**completed, "id": f"evt_{uuid.uuid4().hex}"},
        {**completed, "id": f"evt_{uuid.uuid4().hex}",
         "type": "checkout.session.async_payment_succeeded"},
    ]  # fmt: skip
    answers = await asyncio.gather(*(deliver(stack, secrets, e) for e in [completed] * 20 + others))
    assert {a.status_code for a in answers} == {200}
    assert sum(not a.json()["duplicate"] for a in answers[:20]) == 1
    assert await balance(stack.admin, user) == 100


async def test_refund_before_the_delayed_completion_ends_with_nothing_granted(
    stack: Stack, stripe_emulator: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    user, headers = await stack.user(credits=0)
    await faults(stripe_emulator, webhook_reorder=True)
    started = await checkout(stack, headers)
    await press_pay(stripe_emulator, str(started["checkout_url"]))
    await refund(stripe_client, started)
    await settled(stripe_emulator)  # the completion was held back and went after the refund
    types = [d["type"] for d in (await stripe_emulator.get("/__emulator/deliveries")).json()]
    assert types == ["charge.refunded", "checkout.session.completed"]
    assert await balance(stack.admin, user) == 0
    [done] = await purchases(stack, headers)
    assert (done["status"], done["amount_refunded"], done["credits_reversed"]) == ("paid", 500, 100)


async def test_completion_twice_and_refunds_twice_move_credits_once(
    stack: Stack, stripe_emulator: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    user, headers, started = await paid_with_faults(
        stack, stripe_emulator, webhook_duplicate_rate=1.0
    )
    assert await balance(stack.admin, user) == 100
    for amount in (200, 200):  # two partial refunds, each event delivered twice
        await refund(stripe_client, started, amount)
    await settled(stripe_emulator)
    assert await balance(stack.admin, user) == 20  # 400 of 500 refunded: 80 credits back
    [done] = await purchases(stack, headers)
    assert (done["amount_refunded"], done["credits_reversed"]) == (400, 80)


async def test_dispute_holds_the_account_and_a_won_dispute_gives_everything_back(
    stack: Stack, stripe_emulator: httpx.AsyncClient
) -> None:
    user, headers = await stack.user(credits=0)
    started = await pay(stack, stripe_emulator, headers)
    session_id = started["session_id"]
    opened = await stripe_emulator.post(f"/__emulator/sessions/{session_id}/dispute", json={})
    assert opened.status_code == 200
    await settled(stripe_emulator)
    assert await balance(stack.admin, user) == 0

    refused = await stack.submit(headers)
    assert refused.status_code == 403
    assert refused.json()["code"] == "account_on_hold"
    assert "a card payment is disputed" in refused.json()["detail"]
    buy = await stack.api.post("/api/credits/checkout", json={"pack": "small"}, headers=headers)
    assert (buy.status_code, buy.json()["code"]) == (403, "account_on_hold")
    assert (await stack.api.get("/api/credits", headers=headers)).status_code == 200
    assert (await stack.api.get("/api/generation/history", headers=headers)).status_code == 200
    assert (await purchases(stack, headers))[0]["dispute_status"] == "open"

    closed = await stripe_emulator.post(
        f"/__emulator/sessions/{session_id}/dispute/close", json={"outcome": "won"}
    )
    assert closed.status_code == 200
    await settled(stripe_emulator)
    assert await balance(stack.admin, user) == 100
    assert (await stack.submit(headers)).status_code == 201


async def test_every_webhook_dropped_and_reconciliation_still_fulfils(
    stack: Stack, stripe_emulator: httpx.AsyncClient, services: Services
) -> None:
    user, _, _ = await paid_with_faults(stack, stripe_emulator, webhook_drop_rate=1.0)
    assert await balance(stack.admin, user) == 0

    summary = await services.reconciler.sweep()
    assert summary.counts["purchases_granted"] == 1
    assert await balance(stack.admin, user) == 100
    again = await services.reconciler.sweep()
    assert again.counts["purchases_claimed"] == 0


@pytest.mark.parametrize(
    ("knobs", "status", "review_reason"),
    [
        ({"paid_amount": 50}, "review", "paid 50 USD, but the pack costs 500 USD"),
        ({"async_fail_rate": 1.0}, "failed", None),
    ],
    ids=["wrong-amount-flagged", "async-payment-failed"],
)
async def test_payment_that_differs_from_the_pack_or_fails_grants_nothing(
    stack: Stack,
    stripe_emulator: httpx.AsyncClient,
    knobs: Json,
    status: str,
    review_reason: str | None,
) -> None:
    user, headers, _ = await paid_with_faults(stack, stripe_emulator, **knobs)
    assert await balance(stack.admin, user) == 0
    assert (await purchases(stack, headers))[0]["status"] == status
    cur = await stack.admin.execute("select review_reason from public.purchases")
    assert await cur.fetchone() == (review_reason,)


async def test_stripe_down_or_refusing_is_translated_once(
    settings: Settings, stripe_url: str
) -> None:
    pack = DEFAULT_PACKS[0]
    order = CheckoutOrder(
        uuid.uuid4(), uuid.uuid4(), pack, "http://localhost/ok", "http://localhost/no"
    )
    down = StripeGateway.from_settings(
        settings.model_copy(update={"stripe_base_url": NO_STRIPE_URL})
    )
    with pytest.raises(PaymentProviderUnavailable):
        await down.create_checkout(order)
    await down.aclose()
    wrong_key = StripeGateway.from_settings(
        settings.model_copy(update={"stripe_secret_key": SecretStr("sk_test_wrong")})
    )
    with pytest.raises(PaymentProviderError) as refused:
        await wrong_key.create_checkout(order)
    assert refused.value.extra["provider_status"] == 401
    await wrong_key.aclose()


async def test_failed_asynchronous_payment_with_its_webhooks_dropped_is_ended_by_reconciliation(
    stack: Stack, stripe_emulator: httpx.AsyncClient, services: Services
) -> None:
    user, headers, _ = await paid_with_faults(
        stack, stripe_emulator, async_fail_rate=1.0, webhook_drop_rate=1.0
    )
    assert (await purchases(stack, headers))[0]["status"] == "pending"

    summary = await services.reconciler.sweep()
    assert summary.counts["purchases_failed"] == 1
    assert (await purchases(stack, headers))[0]["status"] == "failed"
    assert await balance(stack.admin, user) == 0


async def test_checkout_is_rate_limited_like_creates(stack: Stack) -> None:
    _, headers = await stack.user()
    for _ in range(10):  # CREATE_RATE_PER_MINUTE's default
        await checkout(stack, headers)
    refused = await stack.api.post("/api/credits/checkout", json={"pack": "small"}, headers=headers)
    assert refused.status_code == 429, refused.text
    assert refused.json()["code"] == "rate_limited"
    assert "10 generations or checkouts a minute" in refused.json()["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert len(await purchases(stack, headers)) == 10
    assert (await stack.submit(headers)).status_code == 429  # one budget for both


async def test_stats_show_revenue_and_margin_of_a_paid_and_partly_refunded_pack(
    stack: Stack, stripe_emulator: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    user, _, started = await paid_with_faults(stack, stripe_emulator)
    await refund(stripe_client, started, 200)
    await settled(stripe_emulator)

    admin_headers = {"Authorization": f"Bearer {stack.token(user, app_role='admin')}"}
    stats = (await stack.api.get("/api/admin/stats?since=1h", headers=admin_headers)).json()
    assert stats["revenue"] == {
        "value": 3.0, "currency": "usd", "gross": 5.0, "refunded": 2.0, "disputes_lost": 0.0,
        "disputes_open": 0.0, "purchases": 1, "credits_sold": 100, "other_currencies": {},
    }  # fmt: skip
    assert stats["margin"] == {"value": 3.0, "currency": "usd"}  # nothing spent at Replicate
    assert (stats["credits"]["bought"], stats["credits"]["taken_back"]) == (100, 40)
    assert stats["credit_accuracy"]["purchases_checked"] == 1
    assert stats["credit_accuracy"]["met"] is True


ODD_EVENTS = [
    # Numbers no column holds, ids that are not ours, wrong types where objects go.
    {"id": "evt_odd_1", "type": "checkout.session.completed", "data": {"object": {
        "id": "cs_x", "payment_status": "paid", "amount_total": 10**23, "currency": "usd",
        "metadata": {"purchase_id": "not-a-uuid"}, "client_reference_id": "x"}}},
    {"id": "evt_odd_2", "type": "checkout.session.completed", "data": {"object": {
        "id": "cs_y", "payment_status": "paid", "amount_total": -5, "currency": "usd",
        "metadata": {"purchase_id": "00000000-0000-0000-0000-000000000000"}}}},
    {"id": "evt_odd_3", "type": "charge.refunded", "data": {"object": {
        "payment_intent": {"id": "pi_nested"}, "amount_refunded": 10**30, "amount": 500}}},
    {"id": "evt_odd_4", "type": "charge.dispute.closed", "data": {"object": {
        "id": "dp_1", "status": None, "amount": -1, "payment_intent": "pi_unknown"}}},
    {"id": "evt_odd_5", "type": "charge.dispute.created", "data": {"object": {
        "id": "dp_2", "status": "needs_response", "amount": 1.5, "payment_intent": ""}}},
    {"id": "evt_odd_6", "type": "some.future.event", "data": {"object": [1, 2, 3]}},
    {"id": "x" * 5000, "type": "checkout.session.expired", "data": {"object": {"id": "cs_z"}}},
]  # fmt: skip


@pytest.mark.parametrize("event", ODD_EVENTS, ids=[f"odd{i}" for i in range(len(ODD_EVENTS))])
async def test_a_signed_event_with_odd_contents_is_answered_cleanly(
    stack: Stack, secrets: LocalSecrets, event: Json
) -> None:
    user, _ = await stack.user(credits=7)
    response = await deliver(stack, secrets, event)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert isinstance(response.json()["detail"], str)
        assert isinstance(response.json()["code"], str)
    assert await balance(stack.admin, user) == 7


class LosesFirstAnswer:
    """Stripe makes the session, but the first answer never reaches us (a timeout)."""

    def __init__(self, gateway: PaymentGateway) -> None:
        self.gateway = gateway
        self.sessions: list[str] = []

    async def create_checkout(self, order: CheckoutOrder) -> CheckoutSession:
        session = await self.gateway.create_checkout(order)
        self.sessions.append(session.id)
        if len(self.sessions) == 1:
            raise PaymentProviderUnavailable()
        return session


async def _first_answer_lost(
    stack: Stack, services: Services, key: str
) -> tuple[uuid.UUID, Purchases, LosesFirstAnswer]:
    """A user whose first checkout under `key` Stripe made but whose answer was lost; the flow
    (over the lossy gateway) to try again with."""
    user, _ = await stack.user()
    lossy = LosesFirstAnswer(services.purchases.gateway)
    flow = replace(services.purchases, gateway=cast("PaymentGateway", lossy))
    with pytest.raises(PaymentProviderUnavailable):
        await flow.checkout(user, "small", idempotency_key=key)
    return user, flow, lossy


async def test_a_checkout_replayed_after_a_lost_answer_gets_the_session_stripe_made(
    stack: Stack, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, flow, lossy = await _first_answer_lost(stack, services, "buy-1")
    # The client retries a while later: Stripe must see the same parameters under the same
    # idempotency key, or it refuses the request (the emulator refuses it as Stripe does).
    later = time.time() + 90
    monkeypatch.setattr(time, "time", lambda: later)
    purchase = await flow.checkout(user, "small", idempotency_key="buy-1")
    assert purchase.session_id == lossy.sessions[0] == lossy.sessions[1]


async def test_a_checkout_too_old_to_open_is_a_conflict(
    stack: Stack, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, flow, lossy = await _first_answer_lost(stack, services, "buy-2")
    later = time.time() + flow.config.checkout_expires_s  # no 30 minutes left for Stripe
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(Conflict, match="too old"):
        await flow.checkout(user, "small", idempotency_key="buy-2")
    assert len(lossy.sessions) == 1
