"""Lock order: a retry and a refunding webhook batch touching the same generation and user.

A retry of G holds its user's lock, then inserts a row whose retry_of points at G: that
foreign-key check takes FOR KEY SHARE on G. A batch with a failed/canceled item locks G first,
then the user. If G were locked FOR UPDATE the two would wait for each other (a deadlock, one
of them aborted by PostgreSQL); locked FOR NO KEY UPDATE, the key check does not wait.

The interleaving is forced, not hoped for: an uncommitted row holding the retry's idempotency
key makes the retry stop inside its insert while it holds the user; the batch then takes G and
waits for the user; releasing that row lets the retry reach its key check on G.
"""

from __future__ import annotations

import asyncio
import uuid

import psycopg

from shared.db.rpc import Applied, Rpc, Update
from tests.support import AdminConn, balance, create_user, new_generation


async def _wait_until_blocked(admin: AdminConn, function: str) -> None:
    """Until a session running `function` waits for a lock (polled, never a fixed sleep)."""
    for _ in range(2000):
        cur = await admin.execute(
            "select count(*) from pg_stat_activity"
            " where wait_event_type = 'Lock' and query like %s",
            (f"%{function}%",),
        )
        if await cur.fetchone() == (1,):
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"{function} never waited for a lock")


async def _retry_racing_batch(rpc: Rpc, admin: AdminConn, database_url: str) -> None:
    user = await create_user(admin)
    old = (await rpc.create_generation(new_generation(user), max_active=3)).generation
    await rpc.fail_submission(old.id, "provider down")
    key = f"retry-{uuid.uuid4().hex}"
    async with await psycopg.AsyncConnection.connect(database_url) as holder:
        await holder.execute(
            "insert into public.generations (user_id, kind, model, resolution, prompt, cost,"
            " request_hash, idempotency_key) values (%s, 't2v', 'm', '480p', 'p', 1, 'h', %s)",
            (user, key),
        )
        retry = asyncio.create_task(
            rpc.create_generation(
                new_generation(user, retry_of=old.id, idempotency_key=key), max_active=3
            )
        )
        await _wait_until_blocked(admin, "create_generation")
        # Replicate redelivers the final webhook: a failed item for G, so the batch may refund.
        batch = asyncio.create_task(rpc.apply_predictions([Update(old.id, "failed")]))
        await _wait_until_blocked(admin, "apply_predictions")
        await holder.rollback()
    created = await retry
    [applied] = await batch
    assert created.created
    assert created.generation.retry_of == old.id
    assert isinstance(applied, Applied)
    assert not applied.changed
    assert await balance(admin, user) == 90


async def test_retry_and_refunding_batch_do_not_deadlock(
    rpc: Rpc, admin: AdminConn, database_url: str
) -> None:
    for _ in range(5):
        await _retry_racing_batch(rpc, admin, database_url)
