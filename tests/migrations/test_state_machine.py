"""The generation state machine: forward only, terminal forever, refunds exactly once."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid

import psycopg
import pytest

from shared.core import errors
from shared.core.domain import Generation
from shared.db.rpc import Applied, Rpc, Update
from tests.support import AdminConn, balance, create_user, ledger_types, queued_generation

STATUSES = ["queued", "processing", "completed", "failed", "canceled"]
RANK = {"queued": 0, "processing": 1, "completed": 2, "failed": 2, "canceled": 2}


async def move_to(rpc: Rpc, gen: Generation, status: str) -> None:
    if status == "queued":
        return
    await rpc.mark_submitted(gen.id, f"job-{gen.id.hex[:8]}")
    if status != "processing":
        await rpc.apply_prediction(
            gen.id, status, video_url="https://x.test/v.mp4" if status == "completed" else None
        )


async def test_mark_submitted_moves_queued_to_processing(rpc: Rpc, admin: AdminConn) -> None:
    gen = await queued_generation(rpc, await create_user(admin))
    applied = await rpc.mark_submitted(gen.id, "job-1")
    assert applied.changed
    assert applied.generation.status == "processing"
    assert applied.generation.job_id == "job-1"
    again = await rpc.mark_submitted(gen.id, "job-1")
    assert not again.changed


async def test_mark_submitted_after_a_sweep_failed_it_changes_nothing(
    rpc: Rpc, admin: AdminConn
) -> None:
    gen = await queued_generation(rpc, await create_user(admin))
    await rpc.apply_prediction(gen.id, "failed", error="never submitted")
    late = await rpc.mark_submitted(gen.id, "job-late")
    assert not late.changed
    assert late.generation.status == "failed"
    assert late.generation.job_id is None  # the caller sees the orphan and cancels it


async def test_ten_concurrent_failed_updates_refund_once(rpc: Rpc, admin: AdminConn) -> None:
    user = await create_user(admin, credits=100)
    gen = await queued_generation(rpc, user)
    await rpc.mark_submitted(gen.id, "job-x")
    results = await asyncio.gather(
        *(rpc.apply_prediction(gen.id, "failed", job_id="job-x", error="oom") for _ in range(10))
    )
    assert sum(r.changed for r in results) == 1
    assert sum(r.refunded for r in results) == 10
    assert await balance(admin, user) == 100
    assert await ledger_types(admin, gen.id) == ["deduction", "refund"]


async def test_completed_generation_never_refunds(rpc: Rpc, admin: AdminConn) -> None:
    user = await create_user(admin, credits=100)
    gen = await queued_generation(rpc, user)
    await move_to(rpc, gen, "completed")
    late_failure = await rpc.apply_prediction(gen.id, "failed", error="late")
    assert not late_failure.changed
    assert late_failure.generation.status == "completed"
    with pytest.raises(errors.InvalidTransition):
        await rpc.refund_credits(gen.id)
    assert await balance(admin, user) == 90


async def test_refund_credits_is_idempotent(rpc: Rpc, admin: AdminConn) -> None:
    user = await create_user(admin, credits=100)
    gen = await queued_generation(rpc, user)
    await move_to(rpc, gen, "canceled")
    assert await rpc.refund_credits(gen.id) == 0  # apply_prediction already refunded
    assert await balance(admin, user) == 100


@pytest.mark.parametrize(("current", "target"), list(itertools.product(STATUSES, STATUSES[1:])))
async def test_every_transition_moves_forward_only(
    rpc: Rpc, admin: AdminConn, current: str, target: str
) -> None:
    user = await create_user(admin, credits=100)
    gen = await queued_generation(rpc, user)
    await move_to(rpc, gen, current)
    before = await rpc.get_generation(user, gen.id)
    # A report names its prediction (nothing is processing without one).
    applied = await rpc.apply_prediction(
        gen.id,
        target,
        job_id=before.job_id or "job-reported",
        video_url="https://x.test/out.mp4",
        progress=50,
    )
    after = applied.generation
    if RANK[current] == 2:
        assert not applied.changed, "a terminal state never changes"
        assert after == before
    elif RANK[target] >= RANK[current]:
        assert after.status == target
    refunded = after.status in ("failed", "canceled")
    assert await balance(admin, user) == (100 if refunded else 90)


async def test_progress_never_decreases_and_stays_below_100_while_running(
    rpc: Rpc, admin: AdminConn
) -> None:
    gen = await queued_generation(rpc, await create_user(admin))
    await rpc.mark_submitted(gen.id, "j")
    assert (await rpc.apply_prediction(gen.id, "processing", progress=60)).generation.progress == 60
    stale = await rpc.apply_prediction(gen.id, "processing", progress=30)
    assert not stale.changed
    assert stale.generation.progress == 60
    capped = await rpc.apply_prediction(gen.id, "processing", progress=100)
    assert capped.generation.progress == 99


async def test_update_for_another_prediction_is_ignored(rpc: Rpc, admin: AdminConn) -> None:
    gen = await queued_generation(rpc, await create_user(admin))
    await rpc.mark_submitted(gen.id, "ours")
    foreign = await rpc.apply_prediction(gen.id, "failed", job_id="theirs")
    assert not foreign.changed
    assert foreign.generation.status == "processing"


async def test_webhook_before_mark_submitted_adopts_the_job(rpc: Rpc, admin: AdminConn) -> None:
    gen = await queued_generation(rpc, await create_user(admin))
    applied = await rpc.apply_prediction(gen.id, "processing", job_id="early", progress=10)
    assert applied.generation.job_id == "early"
    assert applied.generation.status == "processing"
    assert not (await rpc.mark_submitted(gen.id, "early")).changed


async def test_completed_without_video_is_invalid(rpc: Rpc, admin: AdminConn) -> None:
    gen = await queued_generation(rpc, await create_user(admin))
    with pytest.raises(errors.InvalidInput):
        await rpc.apply_prediction(gen.id, "completed")


async def test_cancel_of_queued_generation_refunds_at_once(rpc: Rpc, admin: AdminConn) -> None:
    user = await create_user(admin, credits=100)
    gen = await queued_generation(rpc, user)
    applied = await rpc.request_cancel(user, gen.id)
    assert applied.generation.status == "canceled"
    assert applied.refunded == 10
    with pytest.raises(errors.InvalidTransition):
        await rpc.request_cancel(user, gen.id)


async def test_cancel_of_running_generation_is_recorded(rpc: Rpc, admin: AdminConn) -> None:
    user = await create_user(admin, credits=100)
    gen = await queued_generation(rpc, user)
    await rpc.mark_submitted(gen.id, "j")
    applied = await rpc.request_cancel(user, gen.id)
    assert applied.generation.status == "processing"
    assert applied.generation.cancel_requested_at is not None
    assert not (await rpc.request_cancel(user, gen.id)).changed


async def test_only_the_owner_can_cancel_or_read(rpc: Rpc, admin: AdminConn) -> None:
    owner = await create_user(admin)
    other = await create_user(admin)
    gen = await queued_generation(rpc, owner)
    with pytest.raises(errors.NotFound):
        await rpc.request_cancel(other, gen.id)
    with pytest.raises(errors.NotFound):
        await rpc.get_generation(other, gen.id)


async def test_set_video_path_only_for_completed_and_once(rpc: Rpc, admin: AdminConn) -> None:
    gen = await queued_generation(rpc, await create_user(admin))
    with pytest.raises(errors.InvalidTransition):
        await rpc.set_video_path(gen.id, "u/v.mp4")
    await move_to(rpc, gen, "completed")
    assert (await rpc.set_video_path(gen.id, "u/v.mp4")).changed
    second = await rpc.set_video_path(gen.id, "u/other.mp4")
    assert not second.changed
    assert second.generation.video_path == "u/v.mp4"


async def test_two_claimers_never_get_the_same_row(rpc: Rpc, admin: AdminConn) -> None:
    user = await create_user(admin, credits=1000)
    for _ in range(30):
        await queued_generation(rpc, user)
    await admin.execute("update public.generations set updated_at = now() - interval '10 minutes'")
    first, second = await asyncio.gather(
        rpc.claim_stale_generations(limit=20, stale_after_s=60),
        rpc.claim_stale_generations(limit=20, stale_after_s=60),
    )
    ids_a = {g.id for g in first}
    ids_b = {g.id for g in second}
    assert not ids_a & ids_b
    assert len(ids_a | ids_b) == 30
    # Just claimed, so not stale again yet.
    assert await rpc.claim_stale_generations(limit=100, stale_after_s=60) == []


# --- apply_predictions: many updates, one call, each its own outcome --------------------------


async def test_batch_applies_each_update_and_isolates_errors(rpc: Rpc, admin: AdminConn) -> None:
    user = await create_user(admin, credits=100)
    gens = [await queued_generation(rpc, user) for _ in range(3)]
    for gen in gens:
        await rpc.mark_submitted(gen.id, f"job-{gen.id.hex[:8]}")
    outcomes = await rpc.apply_predictions(
        [
            Update(gens[0].id, "processing", progress=40),
            Update(uuid.uuid4(), "completed", video_url="https://x.test/v.mp4"),  # unknown
            Update(gens[1].id, "failed", error="oom"),
            Update(gens[2].id, "completed"),  # no video_url: invalid
            Update(gens[2].id, "completed", video_url="https://x.test/v.mp4"),
        ]
    )
    first, unknown, failed, invalid, done = outcomes
    assert isinstance(first, Applied)
    assert first.changed
    assert (first.generation.status, first.generation.progress) == ("processing", 40)
    assert isinstance(unknown, errors.NotFound)
    assert isinstance(failed, Applied)
    assert failed.refunded == 10
    assert isinstance(invalid, errors.InvalidInput)
    assert "video_url" in invalid.detail
    assert isinstance(done, Applied)
    assert done.generation.status == "completed"
    assert await balance(admin, user) == 100 - 30 + 10
    assert await ledger_types(admin, gens[1].id) == ["deduction", "refund"]


async def test_batch_keeps_the_order_of_one_generations_updates(rpc: Rpc, admin: AdminConn) -> None:
    user = await create_user(admin, credits=100)
    gen = await queued_generation(rpc, user)
    await rpc.mark_submitted(gen.id, "job-1")
    failures = [Update(gen.id, "failed", error=f"attempt {i}") for i in range(5)]
    late = Update(gen.id, "processing", progress=90)
    outcomes = await rpc.apply_predictions(
        [Update(gen.id, "processing", progress=30), *failures, late]
    )
    applied = [o for o in outcomes if isinstance(o, Applied)]
    assert len(applied) == 7
    assert [o.changed for o in applied] == [True, True, False, False, False, False, False]
    assert applied[-1].generation.status == "failed"
    assert applied[-1].generation.error_message == "attempt 0"
    assert await balance(admin, user) == 100
    assert await ledger_types(admin, gen.id) == ["deduction", "refund"]


@pytest.mark.parametrize("payload", ["{}", "[]", "null"])
async def test_batch_of_nothing_or_not_a_list(admin: AdminConn, payload: str) -> None:
    await admin.execute("set role service_role")
    if payload == "[]":
        cur = await admin.execute("select count(*) from public.apply_predictions('[]'::jsonb)")
        assert await cur.fetchone() == (0,)
        return
    with pytest.raises(psycopg.Error) as caught:
        await admin.execute(f"select * from public.apply_predictions('{payload}'::jsonb)")
    assert caught.value.sqlstate == "WN422"


async def test_batch_size_is_capped(admin: AdminConn) -> None:
    await admin.execute("set role service_role")
    items = json.dumps([{"generation_id": str(uuid.uuid4()), "status": "processing"}] * 1001)
    with pytest.raises(psycopg.Error) as caught:
        await admin.execute("select * from public.apply_predictions(%s::jsonb)", (items,))
    assert caught.value.sqlstate == "WN422"


@pytest.mark.parametrize("status", ["failed", "processing"])
async def test_concurrent_batches_and_single_calls_do_not_deadlock(
    rpc: Rpc, admin: AdminConn, status: str
) -> None:
    """Batches in opposite orders and single calls on one user's generations: every update
    gets an answer (no deadlock), each generation changes once, refunds happen once."""
    user = await create_user(admin, credits=100)
    gens = [await queued_generation(rpc, user) for _ in range(8)]
    for gen in gens:
        await rpc.mark_submitted(gen.id, f"job-{gen.id.hex[:8]}")
    batch = [Update(g.id, status, error="oom", progress=50) for g in gens]
    batches = asyncio.gather(*(rpc.apply_predictions(batch[::step]) for step in (1, -1) * 6))
    singles = asyncio.gather(*(rpc.apply_update(u) for u in reversed(batch)))
    batched, alone = await asyncio.gather(batches, singles)
    outcomes: list[Applied | errors.AppError] = [o for r in batched for o in r]
    outcomes += alone
    assert all(isinstance(o, Applied) for o in outcomes), [
        o for o in outcomes if not isinstance(o, Applied)
    ]
    assert sum(o.changed for o in outcomes if isinstance(o, Applied)) == 8
    assert await balance(admin, user) == (100 if status == "failed" else 20)
