"""Payments under the guardrails: checkout takes a create slot, an account's deletion keeps its
purchases and ledger (without personal data), holds outlive it, and the books never cascade."""

from __future__ import annotations

import psycopg
import pytest

from shared.core.errors import AccountOnHold, NotFound, RateLimited
from shared.db.purchases import PurchaseStore
from shared.db.rpc import Rpc
from tests.purchase_support import SMALL, dispute, paid, refunded
from tests.support import AdminConn, balance, create_user, new_generation


async def test_checkouts_share_the_create_rate_limit_and_a_refused_one_records_nothing(
    store: PurchaseStore, rpc: Rpc, admin: AdminConn
) -> None:
    user = await create_user(admin)
    await rpc.create_generation(new_generation(user), max_active=3, rate_per_minute=3)
    for key in ("a", "b"):
        await store.create_purchase(user, SMALL, idempotency_key=key, rate_per_minute=3)
    with pytest.raises(RateLimited) as caught:
        await store.create_purchase(user, SMALL, idempotency_key="c", rate_per_minute=3)
    assert (caught.value.status, caught.value.code) == (429, "rate_limited")
    assert "at most 3 generations or checkouts a minute" in caught.value.detail
    assert 1 <= int(caught.value.headers["Retry-After"]) <= 60
    # A replayed key returns its purchase without taking a slot.
    _, created = await store.create_purchase(user, SMALL, idempotency_key="a", rate_per_minute=3)
    assert not created
    assert len(await store.list_purchases(user, limit=50)) == 2
    with pytest.raises(RateLimited):
        await rpc.create_generation(new_generation(user), max_active=3, rate_per_minute=3)
    # Another user has slots of their own.
    other = await create_user(admin)
    await store.create_purchase(other, SMALL, idempotency_key=None, rate_per_minute=3)


async def test_deleted_account_keeps_its_purchases_and_ledger_without_personal_data(
    store: PurchaseStore, rpc: Rpc, admin: AdminConn
) -> None:
    user = await create_user(admin, credits=0)
    purchase = await paid(store, user)
    await store.create_purchase(user, SMALL, idempotency_key="buy-1", rate_per_minute=None)
    await admin.execute("delete from auth.users where id = %s", (user,))  # the trigger forgets

    pending, kept = await store.list_purchases(user, limit=50)
    assert (kept.id, kept.status, kept.credits, kept.amount) == (purchase.id, "paid", 100, 500)
    cur = await admin.execute(
        "select count(*) from public.purchases where idempotency_key is not null"
    )
    assert await cur.fetchone() == (0,)  # the client's text goes with the person
    assert pending.status == "pending"
    cur = await admin.execute(
        "select email, deleted_at is not null from public.users where id = %s", (user,)
    )
    assert await cur.fetchone() == (None, True)
    cur = await admin.execute(
        "select type, amount from public.credit_transactions where user_id = %s"
        " order by created_at, id",
        (user,),
    )
    assert await cur.fetchall() == [("signup_bonus", 100), ("adjustment", -100), ("purchase", 100)]
    # A refund after the deletion still lands in the books (and the invariants hold).
    await store.apply_event(refunded(purchase, 500))
    assert await balance(admin, user) == 0
    with pytest.raises(NotFound):
        await store.create_purchase(user, SMALL, idempotency_key=None, rate_per_minute=None)


async def test_hold_stays_on_a_deleted_account(store: PurchaseStore, admin: AdminConn) -> None:
    user = await create_user(admin, credits=0)
    purchase = await paid(store, user)
    await store.apply_event(dispute(purchase, "open"))
    await store.apply_event(dispute(purchase, "lost"))
    await admin.execute("delete from auth.users where id = %s", (user,))
    cur = await admin.execute("select hold_reason from public.users where id = %s", (user,))
    assert await cur.fetchone() == ("a card payment is disputed",)


async def test_held_account_is_refused_before_its_idempotency_key_is_looked_up(
    store: PurchaseStore, rpc: Rpc, admin: AdminConn
) -> None:
    user = await create_user(admin)
    await store.create_purchase(user, SMALL, idempotency_key="k", rate_per_minute=None)
    purchase = await paid(store, user)
    await store.apply_event(dispute(purchase, "open"))
    with pytest.raises(AccountOnHold):
        await store.create_purchase(user, SMALL, idempotency_key="k", rate_per_minute=None)
    with pytest.raises(AccountOnHold):
        await rpc.create_generation(new_generation(user), max_active=3)


async def test_the_books_never_cascade_from_a_deleted_users_row(
    store: PurchaseStore, admin: AdminConn
) -> None:
    user = await create_user(admin, credits=0)
    await paid(store, user)
    # Even the owner cannot remove a buyer's row: purchases and the ledger would be orphaned.
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        async with admin.transaction():
            await admin.execute("delete from public.users where id = %s", (user,))
    cur = await admin.execute(
        "select count(*) from public.credit_transactions where user_id = %s", (user,)
    )
    assert await cur.fetchone() == (3,)
