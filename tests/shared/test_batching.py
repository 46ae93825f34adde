"""Batchers: concurrent provider updates (UpdateBatcher) and status reads (ReadBatcher) share
database calls, and each caller keeps its own outcome."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence

import pytest

from shared.core import errors
from shared.core.domain import Generation
from shared.db.batching import ReadBatcher, UpdateBatcher
from shared.db.rpc import Applied, Rpc, Update
from shared.db.transports import RpcArg, RpcRow, Transport
from tests.support import AdminConn, balance, create_user, ledger_types, new_generation


class Recording:
    """The real transport, with every call's function and batch size written down; can fail
    the next batch call on purpose."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.calls: list[tuple[str, int]] = []
        self.fail_next_batch = False

    async def call(self, fn: str, args: Mapping[str, RpcArg]) -> list[RpcRow]:
        items = args.get("p_updates", args.get("p_generation_ids"))
        self.calls.append((fn, len(items) if isinstance(items, list) else 1))
        if fn == "apply_predictions" and self.fail_next_batch:
            self.fail_next_batch = False
            raise errors.DatabaseUnavailable()
        return await self.inner.call(fn, args)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def recording(rpc: Rpc) -> Recording:
    return Recording(rpc.transport)


async def running(rpc: Rpc, admin: AdminConn, count: int, credits: int = 1000) -> list[Generation]:
    user = await create_user(admin, credits=credits)
    gens = []
    for i in range(count):
        created = await rpc.create_generation(
            new_generation(user, prompt=f"scene {i}"), max_active=1000
        )
        gens.append((await rpc.mark_submitted(created.generation.id, f"job-{i}")).generation)
    return gens


async def test_a_lone_update_goes_out_at_once_through_apply_prediction(
    rpc: Rpc, admin: AdminConn, recording: Recording
) -> None:
    (gen,) = await running(rpc, admin, 1)
    batcher = UpdateBatcher(Rpc(recording), max_batch=64, max_calls=2)
    applied = await batcher.apply(Update(gen.id, "processing", progress=20))
    assert applied.changed
    assert applied.generation.progress == 20
    assert recording.calls == [("apply_prediction", 1)]


async def test_updates_arriving_during_a_call_share_the_next_one(
    rpc: Rpc, admin: AdminConn, recording: Recording
) -> None:
    gens = await running(rpc, admin, 40)
    batcher = UpdateBatcher(Rpc(recording), max_batch=64, max_calls=1)
    results = await asyncio.gather(
        *(batcher.apply(Update(g.id, "processing", progress=i)) for i, g in enumerate(gens))
    )
    assert recording.calls == [("apply_prediction", 1), ("apply_predictions", 39)]
    assert [r.generation.id for r in results] == [g.id for g in gens]  # each its own outcome
    assert [r.generation.progress for r in results] == list(range(40))
    assert (batcher.calls_made, batcher.items_sent) == (2, 40)


async def test_batches_respect_max_batch_and_max_calls(
    rpc: Rpc, admin: AdminConn, recording: Recording
) -> None:
    gens = await running(rpc, admin, 11)
    batcher = UpdateBatcher(Rpc(recording), max_batch=3, max_calls=2)
    await asyncio.gather(*(batcher.apply(Update(g.id, "processing", progress=5)) for g in gens))
    assert sorted(size for _, size in recording.calls) == [1, 1, 3, 3, 3]


async def test_one_bad_update_fails_only_its_own_caller(
    rpc: Rpc, admin: AdminConn, recording: Recording
) -> None:
    gens = await running(rpc, admin, 4)
    batcher = UpdateBatcher(Rpc(recording), max_batch=64, max_calls=1)
    updates = [Update(g.id, "failed", error="oom") for g in gens]
    updates.insert(2, Update(uuid.uuid4(), "failed", error="oom"))  # not ours
    results = await asyncio.gather(*(batcher.apply(u) for u in updates), return_exceptions=True)
    assert isinstance(results[2], errors.NotFound)
    others = [r for i, r in enumerate(results) if i != 2]
    assert all(isinstance(r, Applied) and r.refunded == 10 for r in others)
    assert recording.calls[-1] == ("apply_predictions", 4)


async def test_a_failed_call_fails_its_updates_and_the_next_call_works(
    rpc: Rpc, admin: AdminConn, recording: Recording
) -> None:
    gens = await running(rpc, admin, 5, credits=50)
    user = gens[0].user_id
    batcher = UpdateBatcher(Rpc(recording), max_batch=64, max_calls=1)
    recording.fail_next_batch = True
    first = await asyncio.gather(
        *(batcher.apply(Update(g.id, "failed", error="oom")) for g in gens),
        return_exceptions=True,
    )
    assert isinstance(first[0], Applied)  # went alone
    assert all(isinstance(r, errors.DatabaseUnavailable) for r in first[1:])
    assert await balance(admin, user) == 10  # only the first was refunded
    again = await asyncio.gather(
        *(batcher.apply(Update(g.id, "failed", error="oom")) for g in gens[1:])
    )
    assert all(r.changed and r.refunded == 10 for r in again)
    assert await balance(admin, user) == 50
    for gen in gens:
        assert await ledger_types(admin, gen.id) == ["deduction", "refund"]


async def test_a_caller_that_goes_away_still_has_its_update_applied(
    rpc: Rpc, admin: AdminConn, recording: Recording
) -> None:
    gens = await running(rpc, admin, 3)
    batcher = UpdateBatcher(Rpc(recording), max_batch=64, max_calls=1)
    tasks = [
        asyncio.create_task(batcher.apply(Update(g.id, "processing", progress=60))) for g in gens
    ]
    await asyncio.sleep(0)  # all three queued; the first call is running
    tasks[2].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[2], asyncio.CancelledError)
    await batcher.drain()
    assert batcher.items_sent == 3
    read = await rpc.get_generation(gens[2].user_id, gens[2].id)
    assert read.progress == 60


def test_limits_must_be_positive(rpc: Rpc) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        UpdateBatcher(rpc, max_batch=64, max_calls=0)


class ShortAnswers(Rpc):
    """An Rpc whose batch answer leaves an update out (a bug the batcher must survive)."""

    async def apply_predictions(self, updates: Sequence[Update]) -> list[Applied | errors.AppError]:
        return (await super().apply_predictions(updates))[:-1]


async def test_no_caller_waits_forever_when_a_batch_goes_wrong(
    rpc: Rpc, admin: AdminConn, caplog: pytest.LogCaptureFixture
) -> None:
    gens = await running(rpc, admin, 4)
    batcher = UpdateBatcher(ShortAnswers(rpc.transport), max_batch=64, max_calls=1)
    async with asyncio.timeout(30):  # a guard against a hang, not a timing assertion
        results = await asyncio.gather(
            *(batcher.apply(Update(g.id, "processing", progress=7)) for g in gens),
            return_exceptions=True,
        )
        await batcher.drain()
    assert isinstance(results[0], Applied)  # alone, through apply_prediction
    assert all(isinstance(r, errors.AppError) for r in results[1:])
    assert "apply_predictions answered 2 of 3 items" in caplog.text


# --- status reads ----------------------------------------------------------------------------


def reads_of(recording: Recording, max_calls: int = 2) -> ReadBatcher:
    return ReadBatcher(
        Rpc(recording), poll_after_s=3600, max_polls=3, max_batch=64, max_calls=max_calls
    )


async def test_a_lone_read_goes_out_at_once_through_read_generation(
    rpc: Rpc, admin: AdminConn, recording: Recording
) -> None:
    (gen,) = await running(rpc, admin, 1)
    read, claimed = await reads_of(recording).submit((gen.user_id, gen.id))
    assert (read, claimed) == (gen, False)
    assert recording.calls == [("read_generation", 1)]


async def test_reads_arriving_during_a_call_share_the_next_one_each_with_its_answer(
    rpc: Rpc, admin: AdminConn, recording: Recording
) -> None:
    gens = await running(rpc, admin, 6)
    stranger = await create_user(admin)
    asked = [(g.user_id, g.id) for g in gens] + [(stranger, g.id) for g in gens]
    batcher = reads_of(recording, max_calls=1)
    results = await asyncio.gather(*(batcher.submit(r) for r in asked), return_exceptions=True)
    assert recording.calls == [("read_generation", 1), ("read_generations", 11)]
    assert results[:6] == [(g, False) for g in gens]  # each owner reads their own
    assert all(isinstance(r, errors.NotFound) for r in results[6:])  # a stranger, 404 alone


async def test_a_row_the_model_refuses_fails_only_its_own_read(
    rpc: Rpc, admin: AdminConn, recording: Recording
) -> None:
    """A generation whose stored params are not an object (written by hand, not by our SQL)
    fails its own read; the reads sharing its call get their answers."""
    gens = await running(rpc, admin, 4)
    odd = gens[1]
    await admin.execute(
        "update public.generations set params = '\"odd\"'::jsonb where id = %s", (odd.id,)
    )
    batcher = reads_of(recording, max_calls=1)
    results = await asyncio.gather(
        *(batcher.submit((g.user_id, g.id)) for g in gens), return_exceptions=True
    )
    assert [fn for fn, _ in recording.calls] == ["read_generation", "read_generations"]
    assert isinstance(results[1], errors.AppError)
    assert results[1].status == 500
    assert [r for i, r in enumerate(results) if i != 1] == [
        (g, False) for i, g in enumerate(gens) if i != 1
    ]
