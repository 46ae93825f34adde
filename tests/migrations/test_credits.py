"""The seed's credit functions: signup bonus, add, deduct, refund."""

from __future__ import annotations

import uuid

import pytest

from shared.core import errors
from shared.db.rpc import Rpc
from tests.support import AdminConn, balance, create_user, new_generation


async def test_signup_grants_100_credits_with_a_ledger_entry(admin: AdminConn) -> None:
    user = await create_user(admin)
    assert await balance(admin, user) == 100
    cur = await admin.execute(
        "select type, amount from public.credit_transactions where user_id = %s", (user,)
    )
    assert await cur.fetchall() == [("signup_bonus", 100)]


async def test_add_credits_records_a_purchase(rpc: Rpc, admin: AdminConn) -> None:
    user = await create_user(admin)
    assert await rpc.add_credits(user, 50, type="purchase", description="50 pack") == 150


@pytest.mark.parametrize(
    ("amount", "type_"), [(0, "bonus"), (-5, "bonus"), (5, "refund"), (5, "signup_bonus")]
)
async def test_add_credits_rejects_bad_amounts_and_types(
    rpc: Rpc, admin: AdminConn, amount: int, type_: str
) -> None:
    user = await create_user(admin)
    with pytest.raises(errors.InvalidInput):
        await rpc.add_credits(user, amount, type=type_)
    assert await balance(admin, user) == 100


async def test_negative_adjustment_cannot_go_below_zero(rpc: Rpc, admin: AdminConn) -> None:
    user = await create_user(admin)
    with pytest.raises(errors.InsufficientCredits):
        await rpc.add_credits(user, -101, type="adjustment")
    assert await rpc.add_credits(user, -100, type="adjustment") == 0


async def test_add_credits_to_unknown_user_is_not_found(rpc: Rpc) -> None:
    with pytest.raises(errors.NotFound):
        await rpc.add_credits(uuid.uuid4(), 10)


async def test_deduct_credits_is_once_per_generation(rpc: Rpc, admin: AdminConn) -> None:
    user = await create_user(admin, credits=100)
    created = await rpc.create_generation(new_generation(user), max_active=3)
    rows = await rpc.transport.call(
        "deduct_credits",
        {"p_user_id": user, "p_amount": 10, "p_generation_id": created.generation.id},
    )
    assert rows == [{"balance": 90}]
    assert await balance(admin, user) == 90


async def test_deduct_credits_refuses_overdraft(rpc: Rpc, admin: AdminConn) -> None:
    user = await create_user(admin, credits=5)
    with pytest.raises(errors.InsufficientCredits):
        await rpc.transport.call("deduct_credits", {"p_user_id": user, "p_amount": 6})
    await rpc.transport.call("deduct_credits", {"p_user_id": user, "p_amount": 5})
    assert await balance(admin, user) == 0


async def test_a_failed_submission_reports_the_balance_as_it_is_after_the_refund(
    rpc: Rpc, admin: AdminConn
) -> None:
    user = await create_user(admin, credits=100)
    created = await rpc.create_generation(new_generation(user), max_active=10)
    assert created.balance == 90
    await rpc.add_credits(user, 50, type="bonus")  # the balance moved since the create
    failed = await rpc.fail_submission(created.generation.id, "provider down")
    assert (failed.changed, failed.refunded, failed.balance) == (True, 10, 150)
    assert await balance(admin, user) == 150
    again = await rpc.fail_submission(created.generation.id, "provider down")
    assert (again.changed, again.refunded, again.balance) == (False, 0, None)
