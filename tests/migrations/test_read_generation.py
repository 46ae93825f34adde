"""read_generation: the owner's row, and the polling claim only for a running generation with a
prediction that nothing was heard of for a while, under the cap, once."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from shared.core.errors import InvalidInput, NotFound
from shared.db.rpc import Rpc
from tests.support import AdminConn, completed_generation, create_user, queued_generation

AFTER_S = 60


async def running(rpc: Rpc, admin: AdminConn, *, quiet_s: int) -> tuple[uuid.UUID, uuid.UUID]:
    """A processing generation with a job id that nothing was heard of for `quiet_s`."""
    user = await create_user(admin)
    gen = await queued_generation(rpc, user)
    await rpc.mark_submitted(gen.id, f"job-{gen.id.hex[:8]}")
    await admin.execute(
        "update public.generations set status = 'processing', "
        "updated_at = now() - make_interval(secs => %s) where id = %s",
        (quiet_s, gen.id),
    )
    return user, gen.id


async def polls(admin: AdminConn, gen_id: uuid.UUID) -> int:
    cur = await admin.execute(
        "select poll_attempts from public.generations where id = %s", (gen_id,)
    )
    row = await cur.fetchone()
    assert row is not None
    attempts = row[0]
    assert isinstance(attempts, int)
    return attempts


async def read(rpc: Rpc, user: uuid.UUID, gen_id: uuid.UUID, max_polls: int = 3) -> bool:
    _, claimed = await rpc.read_generation(user, gen_id, poll_after_s=AFTER_S, max_polls=max_polls)
    return claimed


async def test_a_recently_heard_generation_is_read_without_a_claim(
    rpc: Rpc, admin: AdminConn
) -> None:
    user, gen_id = await running(rpc, admin, quiet_s=AFTER_S // 2)
    assert [await read(rpc, user, gen_id) for _ in range(3)] == [False, False, False]
    assert await polls(admin, gen_id) == 0


async def test_an_overdue_generation_is_claimed_once_then_waits_another_interval(
    rpc: Rpc, admin: AdminConn
) -> None:
    user, gen_id = await running(rpc, admin, quiet_s=AFTER_S * 2)
    assert [await read(rpc, user, gen_id) for _ in range(3)] == [True, False, False]
    assert await polls(admin, gen_id) == 1


async def test_the_claim_stops_at_the_cap(rpc: Rpc, admin: AdminConn) -> None:
    user, gen_id = await running(rpc, admin, quiet_s=AFTER_S * 2)
    await admin.execute("update public.generations set poll_attempts = 3 where id = %s", (gen_id,))
    assert await read(rpc, user, gen_id, max_polls=3) is False
    assert await polls(admin, gen_id) == 3


async def test_a_finished_or_unsubmitted_generation_is_never_claimed(
    rpc: Rpc, admin: AdminConn
) -> None:
    done = await completed_generation(rpc, admin)
    user = await create_user(admin)
    queued = await queued_generation(rpc, user)  # no prediction id yet
    await admin.execute(
        "update public.generations set updated_at = now() - interval '1 hour' where id = any(%s)",
        ([done.id, queued.id],),
    )
    assert await read(rpc, done.user_id, done.id) is False
    assert await read(rpc, user, queued.id) is False
    assert (await polls(admin, done.id), await polls(admin, queued.id)) == (0, 0)


async def test_anyone_elses_or_a_deleted_generation_is_not_found(
    rpc: Rpc, admin: AdminConn
) -> None:
    owner, gen_id = await running(rpc, admin, quiet_s=AFTER_S * 2)
    stranger = await create_user(admin)
    with pytest.raises(NotFound):
        await read(rpc, stranger, gen_id)
    await admin.execute("update public.generations set deleted_at = now() where id = %s", (gen_id,))
    with pytest.raises(NotFound):
        await read(rpc, owner, gen_id)
    assert await polls(admin, gen_id) == 0  # no claim for a stranger or a deleted row


# --- read_generations: many reads in one call (the status endpoint's batches) ---------------


async def test_many_reads_answer_as_one_read_each_in_their_order(
    rpc: Rpc, admin: AdminConn
) -> None:
    owner, overdue = await running(rpc, admin, quiet_s=AFTER_S * 2)
    other, recent = await running(rpc, admin, quiet_s=AFTER_S // 2)
    deleted_owner, deleted = await running(rpc, admin, quiet_s=AFTER_S * 2)
    await admin.execute(
        "update public.generations set deleted_at = now() where id = %s", (deleted,)
    )
    reads = [
        (other, recent),
        (owner, overdue),
        (other, overdue),  # someone else's
        (owner, overdue),  # asked again in the same batch: claimed once
        (deleted_owner, deleted),
        (owner, uuid.uuid4()),  # no such generation
    ]
    answers = await rpc.read_generations(reads, poll_after_s=AFTER_S, max_polls=3)
    assert len(answers) == len(reads)
    found = [a for a in answers if not isinstance(a, Exception)]
    assert [(gen.id, claimed) for gen, claimed in found] == [
        (recent, False),
        (overdue, True),
        (overdue, False),
    ]
    for missing in (answers[2], answers[4], answers[5]):
        assert isinstance(missing, NotFound)
        assert missing.detail == "Generation not found."
    assert await polls(admin, overdue) == 1
    assert (await polls(admin, recent), await polls(admin, deleted)) == (0, 0)
    # The claimed answer is the row after the claim, as read_generation gives it.
    claimed_gen = found[1][0]
    assert claimed_gen.last_polled_at is not None
    assert (
        claimed_gen
        == (await rpc.read_generation(owner, overdue, poll_after_s=AFTER_S, max_polls=3))[0]
    )


async def test_many_reads_and_one_read_give_the_same_answers(rpc: Rpc, admin: AdminConn) -> None:
    pairs = [await running(rpc, admin, quiet_s=AFTER_S // 2) for _ in range(3)]
    batch = await rpc.read_generations(pairs, poll_after_s=AFTER_S, max_polls=3)
    alone = [
        await rpc.read_generation(user, gen, poll_after_s=AFTER_S, max_polls=3)
        for user, gen in pairs
    ]
    assert batch == alone


async def test_many_reads_need_as_many_users_as_generations(rpc: Rpc) -> None:
    with pytest.raises(InvalidInput, match="as many user ids as generation ids"):
        await rpc.transport.call(
            "read_generations",
            {
                "p_user_ids": [uuid.uuid4()],
                "p_generation_ids": [uuid.uuid4(), uuid.uuid4()],
                "p_poll_after_s": AFTER_S,
                "p_max_polls": 3,
            },
        )
    assert await rpc.read_generations([], poll_after_s=AFTER_S, max_polls=3) == []


async def _waiting_on_locks(admin: AdminConn, count: int) -> None:
    """Until `count` sessions running read_generations wait for a lock (polled, no sleep-based
    timing: the interval only paces the polls)."""
    for _ in range(2000):
        cur = await admin.execute(
            "select count(*) from pg_stat_activity"
            " where wait_event_type = 'Lock' and query like '%%read_generations%%'"
        )
        if await cur.fetchone() == (count,):
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"{count} read_generations calls never waited for a lock")


async def test_batches_asking_in_opposite_orders_claim_in_one_order(
    rpc: Rpc, admin: AdminConn, database_url: str
) -> None:
    """Two batches read the same two overdue generations in opposite orders while the first
    one (by id) is locked elsewhere: both wait on it, neither holds the other, so releasing it
    lets both finish (claiming in input order, the second batch would hold G2 and wait for G1
    while the first holds G1 and waits for G2: a deadlock). Called on plain connections, so a
    deadlock would not be hidden by the transport's one retry."""
    first, second = sorted([await running(rpc, admin, quiet_s=AFTER_S * 2) for _ in range(2)])
    call = "select idx, claimed from public.read_generations(%s, %s, %s, 3) order by idx"

    async def batch(pairs: list[tuple[uuid.UUID, uuid.UUID]]) -> list[tuple[object, ...]]:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await conn.execute("set role service_role")
            cur = await conn.execute(call, ([u for u, _ in pairs], [g for _, g in pairs], AFTER_S))
            return await cur.fetchall()

    async with await psycopg.AsyncConnection.connect(database_url) as holder:
        await holder.execute(
            "select 1 from public.generations where id = %s for no key update", (first[1],)
        )
        forward = asyncio.create_task(batch([first, second]))
        backward = asyncio.create_task(batch([second, first]))
        await _waiting_on_locks(admin, 2)
        await holder.rollback()
    answers = await forward, await backward
    claims = {gen: 0 for _, gen in (first, second)}
    for pairs, rows in zip(([first, second], [second, first]), answers, strict=True):
        for (_, gen), (_, claimed) in zip(pairs, rows, strict=True):
            claims[gen] += bool(claimed)
    assert claims == {first[1]: 1, second[1]: 1}  # each claimed once, by one of the batches
    assert (await polls(admin, first[1]), await polls(admin, second[1])) == (1, 1)
