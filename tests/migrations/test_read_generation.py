"""read_generation: the owner's row, and the polling claim only for a running generation with a
prediction that nothing was heard of for a while, under the cap, once."""

from __future__ import annotations

import uuid

import pytest

from shared.core.errors import NotFound
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
