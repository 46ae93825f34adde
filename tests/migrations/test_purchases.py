"""The payment SQL functions: grants once, claw-backs in proportion, holds, any event order.

Each scenario runs against the real database; the ledger invariants (credits = SUM(ledger) >= 0,
one grant per paid purchase, reversals matching the purchase) are checked after every test.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid

import psycopg
import pytest

from shared.core.errors import AccountOnHold, IdempotencyConflict
from shared.core.purchases import Purchase, StripeFact
from shared.db.purchases import PurchaseStore
from shared.db.rpc import Rpc
from shared.payments.packs import DEFAULT_PACKS
from tests.purchase_support import SMALL, bought, completed, dispute, evt, refunded
from tests.support import AdminConn, acting_as, balance, create_user, new_generation


@pytest.fixture
async def user(admin: AdminConn) -> uuid.UUID:
    """A user with no credits, so the balance is what the purchase left."""
    return await create_user(admin, credits=0)


@pytest.fixture
async def purchase(store: PurchaseStore, user: uuid.UUID) -> Purchase:
    """`user`'s pending purchase of the small pack (100 credits for 5.00 USD)."""
    return await bought(store, user)


async def current(store: PurchaseStore, user: uuid.UUID) -> Purchase:
    return (await store.list_purchases(user, limit=50))[0]


async def held(admin: AdminConn, user: uuid.UUID) -> bool:
    cur = await admin.execute("select held_at is not null from public.users where id = %s", (user,))
    row = await cur.fetchone()
    assert row is not None
    return bool(row[0])


async def test_completed_event_grants_the_pack_once(
    store: PurchaseStore, admin: AdminConn, user: uuid.UUID, purchase: Purchase
) -> None:
    first = completed(purchase)
    assert (await store.apply_event(first)).outcome == "granted"
    replay = await store.apply_event(first)
    assert replay.duplicate
    assert replay.outcome == "granted"
    again = StripeFact(evt(), "checkout.session.async_payment_succeeded", purchase_id=purchase.id,
                       payment_intent=first.payment_intent, amount=500, currency="usd")  # fmt: skip
    assert (await store.apply_event(again)).outcome == "unchanged"
    assert await balance(admin, user) == 100
    assert (await current(store, user)).status == "paid"


async def test_concurrent_deliveries_and_other_events_grant_once(
    store: PurchaseStore, admin: AdminConn, user: uuid.UUID, purchase: Purchase
) -> None:
    event = completed(purchase)
    others = [
        completed(purchase),
        StripeFact(evt(), "checkout.session.async_payment_succeeded", purchase_id=purchase.id,
                   payment_intent=event.payment_intent, amount=500, currency="usd"),
    ]  # fmt: skip
    outcomes = await asyncio.gather(*(store.apply_event(f) for f in [event] * 20 + others))
    assert [o.outcome for o in outcomes if not o.duplicate].count("granted") == 1
    assert sum(not o.duplicate for o in outcomes[:20]) == 1
    assert await balance(admin, user) == 100


async def test_mismatched_amount_grants_nothing_and_is_flagged(
    store: PurchaseStore, admin: AdminConn, user: uuid.UUID, purchase: Purchase
) -> None:
    assert (await store.apply_event(completed(purchase, amount=50))).outcome == "review"
    assert await balance(admin, user) == 0
    flagged = await current(store, user)
    assert flagged.status == "review"
    assert flagged.review_reason == "paid 50 USD, but the pack costs 500 USD"
    # A later, matching event does not turn a flagged purchase into a grant.
    assert (await store.apply_event(completed(purchase))).outcome == "unchanged"
    assert await balance(admin, user) == 0


async def test_refund_before_completion_ends_with_the_credits_taken_back(
    store: PurchaseStore, admin: AdminConn, user: uuid.UUID, purchase: Purchase
) -> None:
    assert (await store.apply_event(refunded(purchase, 500))).outcome == "reversal_recorded"
    assert (await store.apply_event(completed(purchase))).outcome == "granted"
    assert await balance(admin, user) == 0
    done = await current(store, user)
    assert (done.status, done.amount_refunded, done.credits_reversed) == ("paid", 500, 100)
    assert not await held(admin, user)


async def test_refund_twice_takes_back_once_and_partial_refunds_in_proportion(
    store: PurchaseStore, admin: AdminConn, user: uuid.UUID, purchase: Purchase
) -> None:
    await store.apply_event(completed(purchase))
    await store.apply_event(refunded(purchase, 200))
    await store.apply_event(refunded(purchase, 200))  # the same cumulative amount, another event id
    assert await balance(admin, user) == 60
    await store.apply_event(refunded(purchase, 500))
    await store.apply_event(refunded(purchase, 300))  # an older, smaller total arriving late
    assert await balance(admin, user) == 0


async def test_refund_beyond_the_balance_is_owed_and_holds_the_account(
    store: PurchaseStore, rpc: Rpc, admin: AdminConn, user: uuid.UUID, purchase: Purchase
) -> None:
    await store.apply_event(completed(purchase))
    await rpc.create_generation(new_generation(user, cost=70), max_active=3)
    await store.apply_event(refunded(purchase, 500))
    assert await balance(admin, user) == 0
    owing = await current(store, user)
    assert (owing.credits_reversed, owing.credits_owed) == (100, 70)
    assert await held(admin, user)
    with pytest.raises(AccountOnHold, match="a refund left credits owed"):
        await store.create_purchase(user, SMALL, idempotency_key=None, rate_per_minute=None)
    with pytest.raises(AccountOnHold):
        await rpc.create_generation(new_generation(user), max_active=3)
    assert await store.lift_hold(user, "paid back by bank transfer") == (
        True,
        "a refund left credits owed",
    )
    await store.create_purchase(user, SMALL, idempotency_key=None, rate_per_minute=None)


async def test_dispute_takes_back_and_holds_then_won_gives_back_and_lifts(
    store: PurchaseStore, admin: AdminConn, user: uuid.UUID, purchase: Purchase
) -> None:
    await store.apply_event(completed(purchase))
    await store.apply_event(dispute(purchase, "open"))
    assert await balance(admin, user) == 0
    assert await held(admin, user)
    await store.apply_event(dispute(purchase, "won"))
    assert await balance(admin, user) == 100
    assert not await held(admin, user)
    assert (await current(store, user)).dispute_status == "won"


async def test_dispute_lost_keeps_the_hold_until_an_operator_lifts_it(
    store: PurchaseStore, admin: AdminConn, user: uuid.UUID, purchase: Purchase
) -> None:
    for fact in (completed(purchase), dispute(purchase, "open"), dispute(purchase, "lost")):
        await store.apply_event(fact)
    assert await balance(admin, user) == 0
    assert await held(admin, user)
    await store.lift_hold(user, "reviewed: honest mistake")
    assert not await held(admin, user)


async def test_dispute_for_a_payment_not_seen_yet_applies_when_it_is(
    store: PurchaseStore, admin: AdminConn, user: uuid.UUID, purchase: Purchase
) -> None:
    assert (await store.apply_event(dispute(purchase, "open"))).outcome == "unmatched"
    assert (await store.apply_event(completed(purchase))).outcome == "granted"
    assert await balance(admin, user) == 0
    assert await held(admin, user)


EVENTS = ("completed", "refund_half", "dispute_open", "dispute_won")


@pytest.mark.parametrize("order", list(itertools.permutations(EVENTS)), ids="-".join)
async def test_every_order_of_events_ends_in_the_same_state(
    order: tuple[str, ...],
    store: PurchaseStore,
    admin: AdminConn,
    user: uuid.UUID,
    purchase: Purchase,
) -> None:
    facts = {
        "completed": completed(purchase),
        "refund_half": refunded(purchase, 250),
        "dispute_open": dispute(purchase, "open"),
        "dispute_won": dispute(purchase, "won"),
    }
    for name in order:
        await store.apply_event(facts[name])
    end = await current(store, user)
    assert (end.status, end.amount_refunded, end.dispute_status) == ("paid", 250, "won")
    assert (end.credits_reversed, end.credits_owed) == (50, 0)
    assert await balance(admin, user) == 50
    assert not await held(admin, user)


async def test_replayed_checkout_key_returns_the_same_purchase(
    store: PurchaseStore, admin: AdminConn
) -> None:
    user = await create_user(admin)
    first, created = await store.create_purchase(
        user, SMALL, idempotency_key="k1", rate_per_minute=None
    )
    again, created_again = await store.create_purchase(
        user, SMALL, idempotency_key="k1", rate_per_minute=None
    )
    assert (created, created_again, again.id) == (True, False, first.id)
    with pytest.raises(IdempotencyConflict):
        await store.create_purchase(
            user, DEFAULT_PACKS[1], idempotency_key="k1", rate_per_minute=None
        )


async def test_reconciliation_claims_only_old_pending_purchases_once(
    store: PurchaseStore, admin: AdminConn
) -> None:
    user = await create_user(admin)
    p = await bought(store, user)
    paid = await bought(store, user)
    await store.apply_event(completed(paid))
    assert await store.claim_pending_purchases(limit=10, older_than_s=3600) == []
    claimed = await store.claim_pending_purchases(limit=10, older_than_s=0)
    assert [c.id for c in claimed] == [p.id]
    outcome, settled = await store.settle_purchase(p.id, "expired")
    assert (outcome, settled.status) == ("expired", "expired")
    # Money received wins even over an expiry seen first.
    outcome, settled = await store.settle_purchase(
        p.id, "paid", payment_intent="pi_late", amount=500, currency="usd"
    )
    assert (outcome, settled.status) == ("granted", "paid")


async def test_owner_reads_only_own_purchases(store: PurchaseStore, admin: AdminConn) -> None:
    alice = await create_user(admin)
    bob = await create_user(admin)
    await bought(store, alice)
    await bought(store, bob)
    async with acting_as(admin, "authenticated", alice):
        cur = await admin.execute("select distinct user_id from public.purchases")
        assert await cur.fetchall() == [(alice,)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await admin.execute("update public.purchases set credits = 1")
