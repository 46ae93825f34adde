"""One copy of a video at a time: the webhook's copy and the sweeper's claim the same row, a
failed copy releases it after its delay; and nothing is processing without a prediction id."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import cast

import httpx
import psycopg
import pytest

from local.emulator_media import sample_mp4
from shared.db.rpc import Rpc
from shared.flows.keeper import Keeper
from shared.storage.port import Storage
from tests.support import AdminConn, completed_generation, create_user, new_generation

LEASE_S = 660


async def completed(rpc: Rpc, admin: AdminConn) -> uuid.UUID:
    return (await completed_generation(rpc, admin)).id


async def pending(rpc: Rpc, *, retry_after_s: int = 0) -> list[uuid.UUID]:
    rows = await rpc.claim_pending_copies(
        limit=10, retry_after_s=retry_after_s, max_age_s=3600, max_attempts=5, lease_s=LEASE_S
    )
    return [g.id for g in rows]


async def test_a_claimed_copy_is_not_claimed_again_by_anyone(rpc: Rpc, admin: AdminConn) -> None:
    gen_id = await completed(rpc, admin)
    gen, won = await rpc.claim_copy(gen_id, lease_s=LEASE_S, max_attempts=5)
    assert won
    assert gen.id == gen_id
    # The webhook's copy streams: a second copy (a duplicate webhook) and the sweeper wait.
    assert (await rpc.claim_copy(gen_id, lease_s=LEASE_S, max_attempts=5))[1] is False
    assert await pending(rpc) == []


async def test_a_sweeper_claim_keeps_the_webhook_copy_out(rpc: Rpc, admin: AdminConn) -> None:
    gen_id = await completed(rpc, admin)
    assert await pending(rpc) == [gen_id]
    assert (await rpc.claim_copy(gen_id, lease_s=LEASE_S, max_attempts=5))[1] is False
    assert await pending(rpc) == []


async def test_a_failed_copy_is_free_again_after_its_retry_delay(
    rpc: Rpc, admin: AdminConn
) -> None:
    gen_id = await completed(rpc, admin)
    assert (await rpc.claim_copy(gen_id, lease_s=LEASE_S, max_attempts=5))[1]
    await rpc.record_copy_failure(gen_id, "storage down", retryable=True, retry_after_s=3600)
    assert await pending(rpc) == []  # not before its delay
    await rpc.record_copy_failure(gen_id, "storage down", retryable=True, retry_after_s=0)
    assert await pending(rpc) == [gen_id]


async def test_a_final_failure_is_never_claimed_again(rpc: Rpc, admin: AdminConn) -> None:
    gen_id = await completed(rpc, admin)
    assert (await rpc.claim_copy(gen_id, lease_s=LEASE_S, max_attempts=5))[1]
    await rpc.record_copy_failure(gen_id, "not a video", retryable=False, retry_after_s=0)
    assert await pending(rpc) == []
    assert (await rpc.claim_copy(gen_id, lease_s=LEASE_S, max_attempts=5))[1] is False


async def test_a_never_tried_copy_waits_for_the_webhook_before_the_sweeper_takes_it(
    rpc: Rpc, admin: AdminConn
) -> None:
    gen_id = await completed(rpc, admin)
    assert await pending(rpc, retry_after_s=3600) == []
    assert await pending(rpc, retry_after_s=0) == [gen_id]


async def test_a_copy_kept_needs_no_claim(rpc: Rpc, admin: AdminConn) -> None:
    gen_id = await completed(rpc, admin)
    assert (await rpc.claim_copy(gen_id, lease_s=LEASE_S, max_attempts=5))[1]
    await rpc.set_video_path(gen_id, "u/videos/x.mp4")
    gen, won = await rpc.claim_copy(gen_id, lease_s=LEASE_S, max_attempts=5)
    assert (won, gen.video_path) == (False, "u/videos/x.mp4")


async def test_a_report_without_a_prediction_id_does_not_start_processing(
    rpc: Rpc, admin: AdminConn
) -> None:
    user = await create_user(admin, credits=100)
    gen = (await rpc.create_generation(new_generation(user), max_active=3)).generation
    applied = await rpc.apply_prediction(gen.id, "processing", progress=10)
    assert applied.changed is False
    assert applied.generation.status == "queued"
    # With the prediction's id it does.
    applied = await rpc.apply_prediction(gen.id, "processing", job_id="job-1", progress=10)
    assert (applied.generation.status, applied.generation.job_id) == ("processing", "job-1")


async def test_the_table_refuses_processing_without_a_prediction_id(
    rpc: Rpc, admin: AdminConn
) -> None:
    user = await create_user(admin, credits=100)
    gen = (await rpc.create_generation(new_generation(user), max_active=3)).generation
    with pytest.raises(psycopg.errors.CheckViolation):
        await admin.execute(
            "update public.generations set status = 'processing' where id = %s", (gen.id,)
        )


class CountingStorage:
    """Storage that records how many uploads run at once (each waits for the others)."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.stored: list[str] = []

    async def put_stream(
        self, path: str, chunks: AsyncIterator[bytes], content_type: str, **_: object
    ) -> int:
        self.running += 1
        self.most = max(self.most, self.running)
        size = sum([len(c) async for c in chunks])
        for _step in range(3):  # let every other runnable copy start, if it may
            await asyncio.sleep(0)
        self.running -= 1
        self.stored.append(path)
        return size


async def test_the_sweeper_copies_at_most_its_concurrency_at_once(
    rpc: Rpc, admin: AdminConn
) -> None:
    ids = [await completed(rpc, admin) for _ in range(6)]
    video = sample_mp4()
    transport = httpx.MockTransport(
        lambda _: httpx.Response(200, content=video, headers={"content-type": "video/mp4"})
    )
    storage = CountingStorage()
    async with httpx.AsyncClient(transport=transport) as client:
        keeper = Keeper(
            rpc=rpc,
            storage=cast("Storage", storage),
            client=client,
            max_bytes=10_000_000,
            timeout_s=30,
            retry_after_s=0,
            concurrency=2,
        )
        assert await keeper.retry_pending() == {"copies_kept": 6, "copies_failed": 0}
    assert storage.most == 2
    expected = [f"{await user_of(admin, i)}/videos/{i}.mp4" for i in ids]
    assert sorted(storage.stored) == sorted(expected)


async def user_of(admin: AdminConn, gen_id: uuid.UUID) -> uuid.UUID:
    cur = await admin.execute("select user_id from public.generations where id = %s", (gen_id,))
    row = await cur.fetchone()
    assert row is not None
    assert isinstance(row[0], uuid.UUID)
    return row[0]


async def test_the_webhook_copy_steps_aside_while_another_copy_holds_the_row(
    rpc: Rpc, admin: AdminConn
) -> None:
    gen_id = await completed(rpc, admin)
    assert await pending(rpc) == [gen_id]  # the sweeper holds it
    storage = CountingStorage()
    transport = httpx.MockTransport(lambda _: httpx.Response(500))
    async with httpx.AsyncClient(transport=transport) as client:
        keeper = Keeper(rpc=rpc, storage=cast("Storage", storage), client=client,
                        max_bytes=10_000_000, timeout_s=30)  # fmt: skip
        gen = await rpc.get_generation(await user_of(admin, gen_id), gen_id)
        assert await keeper.keep(gen) is False
    assert storage.stored == []
    cur = await admin.execute(
        "select copy_attempts, copy_error from public.generations where id = %s", (gen_id,)
    )
    assert await cur.fetchone() == (1, None)  # only the sweeper's attempt; nothing recorded
