"""create_generation: the charge, the cap and idempotency, under concurrency."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from shared.core import errors
from shared.db.rpc import Created, Rpc
from tests.support import AdminConn, balance, create_user, ledger_types, new_generation, outcomes


async def create(
    rpc: Rpc, user_id: uuid.UUID, *, max_active: int = 1000, **overrides: object
) -> Created:
    new = new_generation(user_id, **{"prompt": "a cat surfing a wave at sunset", **overrides})
    return await rpc.create_generation(new, max_active=max_active)


async def test_create_charges_the_cost_and_queues(rpc: Rpc, admin: AdminConn) -> None:
    user = await create_user(admin, credits=100)
    result = await create(rpc, user, cost=20)
    assert result.created
    assert result.balance == 80
    assert result.generation.status == "queued"
    assert result.generation.cost == 20
    assert await balance(admin, user) == 80
    assert await ledger_types(admin, result.generation.id) == ["deduction"]


async def test_200_concurrent_creates_charge_exactly_what_the_balance_covers(
    rpc: Rpc, admin: AdminConn
) -> None:
    user = await create_user(admin, credits=500)  # covers 50 generations of 10

    results = await outcomes((create(rpc, user) for _ in range(200)), errors.InsufficientCredits)
    assert results.count("ok") == 50
    assert results.count("insufficient_credits") == 150
    assert await balance(admin, user) == 0


async def test_insufficient_credits_reports_balance_and_required(
    rpc: Rpc, admin: AdminConn
) -> None:
    user = await create_user(admin, credits=5)
    with pytest.raises(errors.InsufficientCredits) as caught:
        await create(rpc, user, cost=10)
    assert caught.value.extra == {"balance": 5, "required": 10}
    assert caught.value.status == 402
    assert await balance(admin, user) == 5


async def test_active_cap_is_a_parameter(rpc: Rpc, admin: AdminConn) -> None:
    user = await create_user(admin, credits=100)
    await create(rpc, user, max_active=2)
    await create(rpc, user, max_active=2)
    with pytest.raises(errors.TooManyActive) as caught:
        await create(rpc, user, max_active=2)
    assert caught.value.extra == {"active": 2, "limit": 2, "balance": 80}
    assert await balance(admin, user) == 80


async def test_finished_generations_do_not_count_against_the_cap(
    rpc: Rpc, admin: AdminConn
) -> None:
    user = await create_user(admin, credits=100)
    first = await create(rpc, user, max_active=1)
    await rpc.apply_prediction(first.generation.id, "failed", error="boom")
    second = await create(rpc, user, max_active=1)
    assert second.created


async def test_replayed_key_returns_the_stored_generation_and_charges_nothing(
    rpc: Rpc, admin: AdminConn
) -> None:
    user = await create_user(admin, credits=100)
    first = await create(rpc, user, idempotency_key="key-1")
    again = await create(rpc, user, idempotency_key="key-1")
    assert not again.created
    assert again.generation.id == first.generation.id
    assert await balance(admin, user) == 90


async def test_20_racing_replays_create_one_generation(rpc: Rpc, admin: AdminConn) -> None:
    user = await create_user(admin, credits=100)
    results = await asyncio.gather(*(create(rpc, user, idempotency_key="same") for _ in range(20)))
    assert len({r.generation.id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert await balance(admin, user) == 90


async def test_same_key_with_other_parameters_is_a_conflict(rpc: Rpc, admin: AdminConn) -> None:
    user = await create_user(admin, credits=100)
    await create(rpc, user, idempotency_key="k")
    with pytest.raises(errors.IdempotencyConflict):
        await create(rpc, user, idempotency_key="k", prompt="a different prompt entirely")
    assert await balance(admin, user) == 90


async def test_keys_are_per_user(rpc: Rpc, admin: AdminConn) -> None:
    alice = await create_user(admin)
    bob = await create_user(admin)
    a = await create(rpc, alice, idempotency_key="shared-key")
    b = await create(rpc, bob, idempotency_key="shared-key")
    assert a.generation.id != b.generation.id
    assert b.created


async def test_unknown_user_is_not_found(rpc: Rpc) -> None:
    with pytest.raises(errors.NotFound) as caught:
        await create(rpc, uuid.uuid4())
    assert caught.value.detail == "User not found."


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"cost": 0}, "Cost must be a positive integer."),
        ({"kind": "gif"}, "Kind must be t2v or i2v."),
        ({"max_active": 0}, "Max_active must be at least 1."),
        ({"idempotency_key": "x" * 256}, "Idempotency key must be 1-255 characters."),
    ],
)
async def test_invalid_arguments_are_rejected_without_a_write(
    rpc: Rpc, admin: AdminConn, override: dict[str, object], message: str
) -> None:
    user = await create_user(admin, credits=100)
    # Straight to SQL: the function must refuse what NewGeneration would already stop.
    payload = new_generation(user).model_dump(mode="json") | override
    max_active = payload.pop("max_active", 3)
    with pytest.raises(errors.InvalidInput) as caught:
        await rpc.transport.call(
            "create_generation",
            {
                "p_new": payload,
                "p_max_active": max_active,
                "p_rate_per_minute": None,
                "p_daily_budget_usd": None,
            },
        )
    assert caught.value.detail == message
    assert await balance(admin, user) == 100


async def test_retry_must_be_of_own_failed_or_canceled_generation(
    rpc: Rpc, admin: AdminConn
) -> None:
    owner = await create_user(admin, credits=100)
    other = await create_user(admin, credits=100)
    running = (await create(rpc, owner)).generation
    with pytest.raises(errors.InvalidTransition) as caught:
        await create(rpc, owner, retry_of=running.id)
    assert caught.value.detail == (
        "Only a failed or canceled generation can be retried (it is queued)."
    )
    await rpc.apply_prediction(running.id, "failed", error="boom")
    with pytest.raises(errors.NotFound):
        await create(rpc, other, retry_of=running.id)
    retried = await create(rpc, owner, retry_of=running.id)
    assert retried.generation.retry_of == running.id
    assert await balance(admin, owner) == 90
    assert await balance(admin, other) == 100


async def test_every_refused_create_reports_the_balance_read_under_its_lock(
    rpc: Rpc, admin: AdminConn
) -> None:
    user = await create_user(admin, credits=35)
    await create(rpc, user, idempotency_key="k1", max_active=2)
    running = (await create(rpc, user, max_active=2)).generation.id
    refusals: list[errors.AppError] = []
    for overrides in (
        {"max_active": 1},  # too many active
        {"idempotency_key": "k1", "prompt": "another prompt for the same key"},  # conflict
        {"retry_of": running},  # not failed or canceled
        {"retry_of": uuid.uuid4()},  # not found
    ):
        with pytest.raises(errors.AppError) as caught:
            await create(rpc, user, **overrides)
        refusals.append(caught.value)
    assert [type(e) for e in refusals] == [
        errors.TooManyActive, errors.IdempotencyConflict, errors.InvalidTransition, errors.NotFound,
    ]  # fmt: skip
    assert [e.extra.get("balance") for e in refusals] == [15, 15, 15, 15]
    assert await balance(admin, user) == 15
