"""Keeping videos in Supabase Storage (the emulator), with the real database: a copy that the
bucket refuses for its size is recorded as final and never claimed again; trouble that may pass
is retried by the sweeper."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from local.emulator_media import mp4_server, padded_size
from local.secrets import api_key
from local.serve import serve
from local.supabase.faults import FaultState
from local.supabase.storage import standalone_storage_app
from local.supabase.storage_state import Bucket, StorageState
from shared.core.domain import Generation
from shared.db.rpc import Rpc
from shared.flows.keeper import Keeper, video_path
from shared.flows.links import VideoLinks
from shared.storage.supabase import SupabaseStorage
from tests.support import AdminConn, completed_generation

MB = 1024 * 1024
JWT_SECRET = "keeper-test-jwt-secret-for-the-emulator"
BUCKET = "generations"
Emulator = tuple[str, StorageState, FaultState]  # its URL, what it holds, its fault knobs
Completed = Callable[[int], Awaitable[Generation]]


@pytest.fixture(scope="module")
def source() -> Iterator[str]:
    with serve(mp4_server()) as url:
        yield url


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    faults = FaultState()
    app, state = standalone_storage_app(
        tmp_path, JWT_SECRET, faults=faults, buckets=(Bucket(BUCKET, file_size_limit=10 * MB),)
    )
    with serve(app) as url:
        yield url, state, faults


@pytest.fixture
async def keeper(rpc: Rpc, emulator: Emulator) -> AsyncIterator[Keeper]:
    storage = SupabaseStorage(
        emulator[0], api_key(JWT_SECRET, "service_role"), BUCKET, retry_delays_s=(0.0,)
    )
    async with httpx.AsyncClient() as client:
        yield Keeper(rpc, storage, client, max_bytes=50 * MB, timeout_s=60, retry_after_s=0)
    await storage.aclose()


@pytest.fixture
def completed(rpc: Rpc, admin: AdminConn, source: str) -> Completed:
    """Makes a completed generation whose output at Replicate is an MP4 of the given size."""

    async def make(size: int) -> Generation:
        return await completed_generation(rpc, admin, f"{source}/output.mp4?size={size}")

    return make


async def claim_copies(rpc: Rpc) -> list[Generation]:
    """What the sweeper claims to copy now."""
    return await rpc.claim_pending_copies(
        limit=10, retry_after_s=0, max_age_s=3600, max_attempts=5, lease_s=60
    )


async def copy_error(admin: AdminConn, gen: Generation) -> str | None:
    cur = await admin.execute("select copy_error from public.generations where id = %s", (gen.id,))
    row = await cur.fetchone()
    assert row is not None
    return None if row[0] is None else str(row[0])


async def test_large_video_is_kept_by_tus_and_served_by_its_signed_link(
    rpc: Rpc, keeper: Keeper, emulator: Emulator, completed: Completed
) -> None:
    gen = await completed(9 * MB)
    assert await keeper.keep(gen)
    kept = await rpc.get_generation(gen.user_id, gen.id)
    assert kept.video_path == video_path(gen)
    assert emulator[1].patch_sizes == [6 * MB, padded_size(9 * MB) - 6 * MB]
    url = await VideoLinks(keeper.storage).view_url(kept)
    assert url is not None
    async with httpx.AsyncClient() as http:
        served = await http.get(url)
    assert served.status_code == 200
    assert len(served.content) == padded_size(9 * MB)
    assert served.content[4:8] == b"ftyp"


async def test_video_over_the_bucket_limit_fails_once_and_is_never_retried(
    rpc: Rpc, admin: AdminConn, keeper: Keeper, completed: Completed
) -> None:
    gen = await completed(12 * MB)
    assert not await keeper.keep(gen)
    assert "maximum allowed size" in (await copy_error(admin, gen) or "")
    assert await claim_copies(rpc) == []  # the sweeper will not pick it up again
    assert (await rpc.get_generation(gen.user_id, gen.id)).video_path is None


async def test_storage_outage_is_left_for_the_sweeper_to_retry(
    rpc: Rpc, keeper: Keeper, emulator: Emulator, completed: Completed
) -> None:
    gen = await completed(MB)
    emulator[2].change({"gateway_error_rate": 1.0, "gateway_status": 502})
    assert not await keeper.keep(gen)
    emulator[2].reset()
    # Released for the sweeper: it claims the row, and its copy goes through.
    (claimed,) = await claim_copies(rpc)
    assert claimed.id == gen.id
    assert await keeper.keep(claimed, claimed=True)
