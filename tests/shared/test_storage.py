"""Storage: the local folder adapter, the settings-chosen backend, and the Supabase adapter's
HTTP. Serving local files under signed links is tested with the dev server's routes, in
tests/local/test_storage_routes.py. SupabaseStorage is exercised
through supabase-py and httpx against the Supabase emulator's Storage (local.supabase.storage),
with its fault knobs for dropped chunks, 5xx and gateway pages.
"""

from __future__ import annotations

import asyncio
import hashlib
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from local.secrets import api_key
from local.serve import serve
from local.supabase.faults import FaultState
from local.supabase.storage import standalone_storage_app
from local.supabase.storage_state import Bucket, StorageState
from shared.core.config import Settings
from shared.core.errors import AppError, ConfigurationError
from shared.storage.local import LocalStorage
from shared.storage.port import StorageLimitExceeded, StorageUnavailable, check_path
from shared.storage.supabase import SupabaseStorage
from shared.wiring import open_storage
from tests.support import Clock, fetch_link_signed_for_another_file

KEY = "local-signing-key-for-tests"
VIDEO = "user-1/videos/gen-1.mp4"
SUPABASE_URL = "https://project.supabase.co"
SERVICE_KEY = "service-role-key"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "storage"


async def chunks(total: int, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    block = b"\x07" * size
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        yield block if n == size else block[:n]
        sent += n


# --- LocalStorage ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["", "/abs/x.mp4", "../x.mp4", "u/../../x.mp4", "u//x.mp4", "u/./x.mp4", "u\\x.mp4", "u/"],
)
async def test_malformed_paths_are_rejected(root: Path, path: str) -> None:
    storage = LocalStorage(root, "http://localhost", KEY)
    with pytest.raises(ValueError, match="bad storage path"):
        check_path(path)
    with pytest.raises(ValueError, match="bad storage path"):
        await storage.put_bytes(path, b"x", "video/mp4")
    with pytest.raises(ValueError, match="bad storage path"):
        await storage.signed_url(path, 60)


async def test_put_stream_writes_every_chunk_and_reports_the_size(root: Path) -> None:
    storage = LocalStorage(root, "http://localhost", KEY)
    written = await storage.put_stream(VIDEO, chunks(3_000_001), "video/mp4")
    assert written == 3_000_001
    assert (root / VIDEO).stat().st_size == 3_000_001
    assert await storage.exists(VIDEO)
    assert not await storage.exists("user-1/videos/other.mp4")


async def test_failed_stream_leaves_no_file_under_any_name(root: Path) -> None:
    storage = LocalStorage(root, "http://localhost", KEY)
    await storage.put_bytes(VIDEO, b"the old video", "video/mp4")

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * 2_000_000
        raise RuntimeError("source died")

    with pytest.raises(RuntimeError, match="source died"):
        await storage.put_stream(VIDEO, broken(), "video/mp4")
    assert (root / VIDEO).read_bytes() == b"the old video"
    assert sorted(p.name for p in (root / VIDEO).parent.iterdir()) == ["gen-1.mp4"]


async def test_put_stream_memory_does_not_grow_with_the_size(root: Path) -> None:
    storage = LocalStorage(root, "http://localhost", KEY)
    tracemalloc.start()
    try:
        written = await storage.put_stream(VIDEO, chunks(50 * 1024 * 1024), "video/mp4")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written == 50 * 1024 * 1024
    assert peak < 16 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


@pytest.mark.parametrize(
    ("given", "named"),
    [
        (
            {"storage_backend": "local", "storage_public_base_url": None,
             "storage_signing_key": None},
            r"STORAGE_PUBLIC_BASE_URL.*STORAGE_SIGNING_KEY",
        ),
        (
            {"storage_backend": "supabase", "supabase_url": None,
             "supabase_service_role_key": None},
            r"SUPABASE_URL.*SUPABASE_SERVICE_ROLE_KEY",
        ),
    ],
    ids=["local", "supabase"],
)  # fmt: skip
def test_open_storage_names_the_missing_settings_of_its_backend(
    given: dict[str, Any], named: str
) -> None:
    settings = Settings(environment="test", **given)
    with pytest.raises(ConfigurationError, match=named):
        open_storage(settings)


async def test_open_storage_builds_the_local_backend(tmp_path: Path) -> None:
    settings = Settings(
        environment="test",
        storage_backend="local",
        storage_local_dir=str(tmp_path),
        storage_public_base_url="http://127.0.0.1:8000/",
        storage_signing_key=KEY,
    )
    storage = open_storage(settings)
    assert isinstance(storage, LocalStorage)
    assert (await storage.signed_url(VIDEO, 60)).startswith(
        f"http://127.0.0.1:8000/storage/{VIDEO}?"
    )


async def test_open_storage_builds_the_supabase_backend() -> None:
    settings = Settings(
        environment="test",
        supabase_url=SUPABASE_URL,
        supabase_service_role_key=SERVICE_KEY,
    )
    storage = open_storage(settings)
    assert isinstance(storage, SupabaseStorage)
    await storage.aclose()


# --- SupabaseStorage, against the Supabase emulator's Storage -------------------------------

JWT_SECRET = "storage-emulator-jwt-secret-for-tests"
BUCKET = "generations"
MB = 1024 * 1024
LIMIT = 60 * MB


class Emulated:
    """A Storage emulator on loopback, what it holds, its fault knobs and its clock."""

    def __init__(self, url: str, state: StorageState, faults: FaultState, clock: Clock) -> None:
        self.url, self.state, self.faults, self.clock = url, state, faults, clock

    def storage(self) -> SupabaseStorage:
        key = api_key(JWT_SECRET, "service_role")
        return SupabaseStorage(self.url, key, BUCKET, retry_delays_s=(0.0, 0.0, 0.0))

    def stored(self, path: str) -> Path:
        return self.state.object(BUCKET, path).file


@pytest.fixture
def emulated(tmp_path: Path, clock: Clock) -> Iterator[Emulated]:
    faults = FaultState()
    app, state = standalone_storage_app(
        tmp_path / "supabase",
        JWT_SECRET,
        faults=faults,
        clock=clock,
        buckets=(Bucket(BUCKET, file_size_limit=LIMIT),),
    )
    with serve(app) as url:
        yield Emulated(url, state, faults, clock)


@pytest.fixture
async def supabase_storage(emulated: Emulated) -> AsyncIterator[SupabaseStorage]:
    storage = emulated.storage()
    try:
        yield storage
    finally:
        await storage.aclose()


def pattern(total: int, size: int = 256 * 1024) -> tuple[AsyncIterator[bytes], str]:
    """A stream of `total` bytes that are not all alike, and the SHA-256 it must hash to."""
    block = bytes(range(256)) * (size // 256)
    digest = hashlib.sha256()
    sent = 0
    while sent < total:
        digest.update(block[: min(size, total - sent)])
        sent += size

    async def stream() -> AsyncIterator[bytes]:
        done = 0
        while done < total:
            n = min(size, total - done)
            yield block if n == size else block[:n]
            done += n

    return stream(), digest.hexdigest()


async def sha256_of(path: Path) -> str:
    def read() -> str:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(MB):
                digest.update(block)
        return digest.hexdigest()

    return await asyncio.to_thread(read)


async def test_small_stream_goes_up_as_one_standard_upload(
    emulated: Emulated, supabase_storage: SupabaseStorage
) -> None:
    stream, digest = pattern(MB + 7)
    written = await supabase_storage.put_stream(VIDEO, stream, "video/mp4")
    assert written == MB + 7
    assert emulated.state.patch_sizes == []
    assert await sha256_of(emulated.stored(VIDEO)) == digest
    assert emulated.state.object(BUCKET, VIDEO).content_type == "video/mp4"


async def test_50_mb_video_goes_up_by_tus_in_6_mb_chunks(
    emulated: Emulated, supabase_storage: SupabaseStorage
) -> None:
    stream, digest = pattern(50 * MB)
    tracemalloc.start()
    try:
        written = await supabase_storage.put_stream(VIDEO, stream, "video/mp4", size=50 * MB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written == 50 * MB
    assert emulated.state.patch_sizes == [6 * MB] * 8 + [2 * MB]
    assert await sha256_of(emulated.stored(VIDEO)) == digest
    assert emulated.state.uploads == {}
    # One 6 MB chunk in hand (plus the one being cut), never the video.
    assert peak < 20 * MB, f"peak {peak / MB:.1f} MB"


async def test_50_mb_tus_upload_survives_a_dropped_chunk(
    emulated: Emulated, supabase_storage: SupabaseStorage
) -> None:
    # The third chunk's connection drops.
    emulated.faults.change({"drop_rate": 1.0, "methods": ["PATCH"], "skip": 2, "times": 1})
    stream, digest = pattern(50 * MB)
    written = await supabase_storage.put_stream(VIDEO, stream, "video/mp4", size=50 * MB)
    assert written == 50 * MB
    sizes = emulated.state.patch_sizes
    # The server kept half of the third chunk; the client asked where it stood (HEAD) and
    # sent only the other half, then went on in 6 MB chunks.
    assert sizes == [6 * MB, 6 * MB, 3 * MB, 3 * MB] + [6 * MB] * 5 + [2 * MB]
    assert await sha256_of(emulated.stored(VIDEO)) == digest


async def test_tus_upload_of_unknown_length_is_spooled_first(
    emulated: Emulated, supabase_storage: SupabaseStorage
) -> None:
    stream, digest = pattern(13 * MB + 1)
    written = await supabase_storage.put_stream(VIDEO, stream, "video/mp4")
    assert written == 13 * MB + 1
    assert emulated.state.patch_sizes == [6 * MB, 6 * MB, MB + 1]
    assert await sha256_of(emulated.stored(VIDEO)) == digest


async def test_tus_upload_gives_up_after_bounded_retries_and_cleans_up(
    emulated: Emulated, supabase_storage: SupabaseStorage
) -> None:
    emulated.faults.change({"error_rate": 1.0, "error_status": 503, "methods": ["PATCH"]})
    stream, _ = pattern(13 * MB)
    with pytest.raises(StorageUnavailable, match="kept failing") as caught:
        await supabase_storage.put_stream(VIDEO, stream, "video/mp4", size=13 * MB)
    assert caught.value.retryable
    assert emulated.state.uploads == {}  # terminated: nothing half-written lingers
    assert not await supabase_storage.exists(VIDEO)


async def test_source_announcing_the_wrong_length_fails_the_upload(
    emulated: Emulated, supabase_storage: SupabaseStorage
) -> None:
    stream, _ = pattern(13 * MB)
    with pytest.raises(StorageUnavailable, match="not the"):
        await supabase_storage.put_stream(VIDEO, stream, "video/mp4", size=14 * MB)
    assert emulated.state.uploads == {}


@pytest.mark.parametrize("size", [7 * MB, 20 * MB])
async def test_upload_over_the_bucket_limit_is_final(
    emulated: Emulated, supabase_storage: SupabaseStorage, size: int
) -> None:
    emulated.state.buckets[BUCKET].file_size_limit = 5 * MB
    stream, _ = pattern(size)
    with pytest.raises(StorageLimitExceeded, match="maximum allowed size") as caught:
        await supabase_storage.put_stream(VIDEO, stream, "video/mp4")
    assert not caught.value.retryable
    assert caught.value.status == 503
    small, _ = pattern(6 * MB)
    with pytest.raises(StorageLimitExceeded):
        await supabase_storage.put_stream(VIDEO, small, "video/mp4")
    assert emulated.state.patch_sizes == []  # refused at creation, before a byte was sent
    assert not await supabase_storage.exists(VIDEO)


async def test_put_bytes_replaces_the_object(
    emulated: Emulated, supabase_storage: SupabaseStorage
) -> None:
    await supabase_storage.put_bytes("u/inputs/a.png", b"\x89PNG old", "image/png")
    await supabase_storage.put_bytes("u/inputs/a.png", b"\x89PNG new", "image/png")
    stored = emulated.state.object(BUCKET, "u/inputs/a.png")
    assert stored.file.read_bytes() == b"\x89PNG new"
    assert stored.content_type == "image/png"


async def test_signed_url_serves_the_file_until_it_expires(
    emulated: Emulated, supabase_storage: SupabaseStorage
) -> None:
    await supabase_storage.put_bytes(VIDEO, b"\x00\x00\x00\x18ftypmp42 video", "video/mp4")
    url = await supabase_storage.signed_url(VIDEO, 60)
    assert url.startswith(f"{emulated.url}/storage/v1/object/sign/{BUCKET}/{VIDEO}?token=")
    async with httpx.AsyncClient() as http:
        served = await http.get(url)
        ranged = await http.get(url, headers={"Range": "bytes=4-7"})
        emulated.clock.now += 61
        expired = await http.get(url)
    assert served.status_code == 200
    assert served.content == b"\x00\x00\x00\x18ftypmp42 video"
    assert served.headers["content-type"] == "video/mp4"
    assert (ranged.status_code, ranged.content) == (206, b"ftyp")
    assert expired.status_code == 400
    assert expired.json()["message"] == "jwt expired"


async def test_signed_url_for_another_file_is_refused(
    emulated: Emulated, supabase_storage: SupabaseStorage
) -> None:
    response = await fetch_link_signed_for_another_file(supabase_storage)
    assert response.status_code == 400
    assert b"other" not in response.content


async def test_exists_remove_and_list(supabase_storage: SupabaseStorage) -> None:
    for path in ("u1/videos/a.mp4", "u1/videos/b.mp4", "u1/inputs/c.png", "u2/videos/d.mp4"):
        await supabase_storage.put_bytes(path, b"x", "video/mp4")
    assert await supabase_storage.list_files("u1") == [
        "u1/inputs/c.png",
        "u1/videos/a.mp4",
        "u1/videos/b.mp4",
    ]
    await supabase_storage.remove(["u1/videos/a.mp4", "u1/inputs/c.png", "u1/none.mp4"])
    assert not await supabase_storage.exists("u1/videos/a.mp4")
    assert await supabase_storage.exists("u1/videos/b.mp4")
    assert await supabase_storage.list_files("u1/") == ["u1/videos/b.mp4"]
    assert await supabase_storage.list_files("nobody") == []


async def test_local_storage_removes_and_lists_the_same_way(root: Path) -> None:
    storage = LocalStorage(root, "http://localhost", KEY)
    for path in ("u1/videos/a.mp4", "u1/inputs/c.png", "u2/videos/d.mp4"):
        await storage.put_bytes(path, b"x", "video/mp4")
    assert await storage.list_files("u1") == ["u1/inputs/c.png", "u1/videos/a.mp4"]
    await storage.remove(["u1/videos/a.mp4", "u1/none.mp4"])
    assert await storage.list_files("u1/") == ["u1/inputs/c.png"]
    assert await storage.list_files("nobody") == []
    with pytest.raises(ValueError, match="bad storage path"):
        await storage.remove(["../escape"])


@pytest.mark.parametrize(
    "knobs",
    [
        {"error_rate": 1.0, "error_status": 500},  # Storage's own JSON 5xx
        {"gateway_error_rate": 1.0, "gateway_status": 502},  # a proxy's HTML page
        {"gateway_error_rate": 1.0, "gateway_status": 504},
    ],
)
async def test_storage_faults_are_storage_unavailable(
    emulated: Emulated, supabase_storage: SupabaseStorage, knobs: dict[str, object]
) -> None:
    emulated.faults.change(knobs)
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: supabase_storage.put_stream(VIDEO, chunks(10), "video/mp4"),
        lambda: supabase_storage.put_bytes(VIDEO, b"x", "video/mp4"),
        lambda: supabase_storage.signed_url(VIDEO, 60),
        lambda: supabase_storage.exists(VIDEO),
        lambda: supabase_storage.remove([VIDEO]),
        lambda: supabase_storage.list_files("u"),
    ]
    for call in calls:
        with pytest.raises(StorageUnavailable) as caught:
            await call()
        assert caught.value.retryable


async def test_a_refusal_other_than_the_size_limit_is_storage_unavailable_with_its_message(
    emulated: Emulated,
) -> None:
    # A bucket that is not there (a misconfigured STORAGE_BUCKET): Storage's own 4xx.
    key = api_key(JWT_SECRET, "service_role")
    storage = SupabaseStorage(emulated.url, key, "no-such-bucket", retry_delays_s=(0.0,))
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: storage.put_stream(VIDEO, chunks(1), "video/mp4"),
        lambda: storage.put_bytes(VIDEO, b"x", "video/mp4"),
        lambda: storage.signed_url(VIDEO, 60),
    ]
    try:
        for call in calls:
            with pytest.raises(StorageUnavailable, match=r"refused .*\(HTTP 4\d\d\)") as caught:
                await call()
            assert not isinstance(caught.value, StorageLimitExceeded)
    finally:
        await storage.aclose()


async def test_storage_that_does_not_answer_in_time_is_storage_unavailable(
    emulated: Emulated,
) -> None:
    emulated.faults.change({"latency_s": 0.5})
    key = api_key(JWT_SECRET, "service_role")
    storage = SupabaseStorage(emulated.url, key, BUCKET, timeout_s=0.05)
    try:
        with pytest.raises(StorageUnavailable, match="did not answer in time"):
            await storage.put_bytes(VIDEO, b"x", "video/mp4")
        with pytest.raises(StorageUnavailable, match="did not answer in time"):
            await storage.list_files("u")
    finally:
        await storage.aclose()


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="<html>Welcome to the hotel Wi-Fi</html>"),
        httpx.Response(200, json=[{"no_name": 1}]),
        httpx.Response(200, json=[{"name": 7, "id": "x"}]),
        httpx.Response(200, json={"not": "a list"}),
    ],
)
async def test_an_unreadable_2xx_from_storage_is_storage_unavailable(
    answer: httpx.Response,
) -> None:
    # A captive portal or a proxy of another API in the way (fake HTTP at the transport only:
    # no emulator answers like this).
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: answer))
    storage = SupabaseStorage("https://project.supabase.test", "key", BUCKET, http=http)
    try:
        with pytest.raises(StorageUnavailable, match="could not read"):
            await storage.list_files("u")
        if answer.headers["content-type"].startswith("text/html"):
            with pytest.raises(StorageUnavailable, match="could not read"):
                await storage.remove([VIDEO])
    finally:
        await http.aclose()


async def test_dropped_connection_is_storage_unavailable(
    emulated: Emulated, supabase_storage: SupabaseStorage
) -> None:
    emulated.faults.change({"drop_rate": 1.0})
    with pytest.raises(StorageUnavailable, match="reach storage"):
        await supabase_storage.put_bytes(VIDEO, b"x" * 1000, "video/mp4")
    with pytest.raises(StorageUnavailable, match="reach storage"):
        await supabase_storage.signed_url(VIDEO, 60)


async def test_unreachable_storage_is_storage_unavailable() -> None:
    with serve(FastAPI()) as url:
        pass  # the port is free again: nothing listens
    storage = SupabaseStorage(url, api_key(JWT_SECRET, "service_role"), BUCKET)
    try:
        with pytest.raises(StorageUnavailable, match="reach storage"):
            await storage.exists(VIDEO)
    finally:
        await storage.aclose()


async def test_source_failure_passes_through_the_upload(
    supabase_storage: SupabaseStorage,
) -> None:
    class SourceFailed(AppError):
        code = "source_failed"

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * (7 * MB)
        raise SourceFailed("source died")

    with pytest.raises(SourceFailed):
        await supabase_storage.put_stream(VIDEO, broken(), "video/mp4", size=8 * MB)
    assert not await supabase_storage.exists(VIDEO)
