"""The purchase flow with a faked payment port (our database stays real): Stripe failing."""

from __future__ import annotations

import pytest

from shared.core.errors import PaymentProviderUnavailable
from shared.core.ratelimit import RateLimiter
from shared.db.purchases import PurchaseStore
from shared.db.rpc import Rpc
from shared.flows.purchases import PurchaseConfig, Purchases
from shared.payments.gateway import CheckoutOrder, CheckoutSession
from shared.payments.packs import DEFAULT_PACKS, Packs
from tests.support import AdminConn, balance, create_user


class FlakyGateway:
    """Refuses creates while `down`; remembers one session per purchase (as Stripe's
    idempotency key does) and answers retrievals from what the test says was paid."""

    def __init__(self) -> None:
        self.down = True
        self.sessions: dict[str, CheckoutSession] = {}
        self.creates = 0
        self.intents: dict[str, str] = {}

    async def create_checkout(self, order: CheckoutOrder) -> CheckoutSession:
        # Only the purchase id matters here (it names the session); the rest is Stripe's.
        self.creates += 1
        if self.down:
            raise PaymentProviderUnavailable()
        session = CheckoutSession(id=f"cs_{order.purchase_id.hex}", url="http://pay.test/x")
        self.sessions.setdefault(session.id, session)
        return self.sessions[session.id]

    async def get_checkout(self, session_id: str) -> CheckoutSession:
        return self.sessions[session_id]

    async def payment_status(self, payment_intent: str) -> str | None:
        return self.intents.get(payment_intent)

    async def aclose(self) -> None:
        return None


def flow(rpc: Rpc, gateway: FlakyGateway) -> Purchases:
    return Purchases(
        PurchaseStore(rpc.transport),
        gateway,
        Packs(DEFAULT_PACKS),
        RateLimiter(1000.0, burst=10),
        config=PurchaseConfig(
            success_url="http://a/ok", cancel_url="http://a/no", reconcile_after_s=0
        ),
    )


async def test_checkout_replayed_after_stripe_failed_gets_one_purchase_and_session(
    rpc: Rpc, admin: AdminConn
) -> None:
    user = await create_user(admin)
    gateway = FlakyGateway()
    purchases = flow(rpc, gateway)
    with pytest.raises(PaymentProviderUnavailable):
        await purchases.checkout(user, "small", idempotency_key="k")
    gateway.down = False
    bought = await purchases.checkout(user, "small", idempotency_key="k")
    again = await purchases.checkout(user, "small", idempotency_key="k")
    assert (again.id, again.session_id) == (bought.id, f"cs_{bought.id.hex}")
    assert len(await purchases.store.list_purchases(user, limit=50)) == 1
    assert gateway.creates == 2  # the replay of a finished checkout asks Stripe nothing


async def test_reconciliation_fails_a_checkout_that_never_started_and_fulfils_a_paid_one(
    rpc: Rpc, admin: AdminConn
) -> None:
    user = await create_user(admin, credits=0)
    gateway = FlakyGateway()
    purchases = flow(rpc, gateway)
    with pytest.raises(PaymentProviderUnavailable):
        await purchases.checkout(user, "small", idempotency_key=None)
    gateway.down = False
    paid = await purchases.checkout(user, "medium", idempotency_key=None)
    assert paid.session_id is not None
    gateway.sessions[paid.session_id] = CheckoutSession(
        id=paid.session_id, url=None, status="complete", payment_status="paid",
        payment_intent="pi_1", amount_total=2000, currency="usd",
    )  # fmt: skip
    counts = await purchases.reconcile()
    assert (counts["never_started"], counts["granted"], counts["claimed"]) == (1, 1, 2)
    assert await balance(admin, user) == 500
    statuses = sorted(p.status for p in await purchases.store.list_purchases(user, limit=50))
    assert statuses == ["failed", "paid"]
