"""read_generation: the owner's row, and the polling claim only for a running generation with a
prediction that nothing was heard of for a while, under the cap, once."""

from __future__ import annotations

import uuid

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
