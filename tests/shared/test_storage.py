"""Storage: the local folder adapter, the settings-chosen backend, and the Supabase adapter's
HTTP (supabase-py and httpx with the network faked only at the transport). Serving local files
under signed links is tested with the dev server's routes, in tests/local/test_storage_routes.py.
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path

import httpx
import pytest

from shared.core.config import Settings
from shared.core.errors import AppError, ConfigurationError
from shared.storage.local import LocalStorage
from shared.storage.port import StorageUnavailable, check_path
from shared.storage.supabase import SupabaseStorage
from shared.wiring import open_storage

KEY = "local-signing-key-for-tests"
VIDEO = "user-1/videos/gen-1.mp4"
SUPABASE_URL = "https://project.supabase.co"
SERVICE_KEY = "service-role-key"
Handler = Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]


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


def test_open_storage_names_missing_local_settings() -> None:
    settings = Settings(
        environment="test",
        storage_backend="local",
        storage_public_base_url=None,
        storage_signing_key=None,
    )
    with pytest.raises(ConfigurationError, match=r"STORAGE_PUBLIC_BASE_URL.*STORAGE_SIGNING_KEY"):
        open_storage(settings)


def test_open_storage_names_missing_supabase_settings() -> None:
    settings = Settings(
        environment="test",
        storage_backend="supabase",
        supabase_url=None,
        supabase_service_role_key=None,
    )
    with pytest.raises(ConfigurationError, match=r"SUPABASE_URL.*SUPABASE_SERVICE_ROLE_KEY"):
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


# --- SupabaseStorage -------------------------------------------------------------------------


def supabase(handler: Handler) -> SupabaseStorage:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return SupabaseStorage(SUPABASE_URL, SERVICE_KEY, "generations", http=http)


async def test_supabase_stream_upload_is_one_raw_chunked_post() -> None:
    seen: list[tuple[httpx.Request, int]] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        size = 0
        async for part in request.stream:  # type: ignore[union-attr]
            size += len(part)
        seen.append((request, size))
        return httpx.Response(200, json={"Key": f"generations/{VIDEO}", "Id": "1"})

    storage = supabase(handler)
    written = await storage.put_stream(VIDEO, chunks(1_000_000), "video/mp4")
    assert written == 1_000_000
    ((request, size),) = seen
    assert request.method == "POST"
    assert str(request.url) == f"{SUPABASE_URL}/storage/v1/object/generations/{VIDEO}"
    assert request.headers["authorization"] == f"Bearer {SERVICE_KEY}"
    assert request.headers["apikey"] == SERVICE_KEY
    assert request.headers["content-type"] == "video/mp4"
    assert request.headers["x-upsert"] == "true"
    assert request.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in request.headers
    assert size == 1_000_000


async def test_supabase_put_bytes_uploads_through_the_client() -> None:
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        await request.aread()
        seen.append(request)
        return httpx.Response(200, json={"Key": "generations/u/inputs/a.png", "Id": "1"})

    await supabase(handler).put_bytes("u/inputs/a.png", b"\x89PNG....", "image/png")
    (request,) = seen
    assert str(request.url) == f"{SUPABASE_URL}/storage/v1/object/generations/u/inputs/a.png"
    assert request.headers["x-upsert"] == "true"
    assert b"\x89PNG...." in request.content
    assert b"image/png" in request.content


async def test_supabase_signed_url_is_absolute_and_asks_for_the_ttl() -> None:
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        await request.aread()
        seen.append(request)
        return httpx.Response(
            200, json={"signedURL": f"/object/sign/generations/{VIDEO}?token=tok"}
        )

    url = await supabase(handler).signed_url(VIDEO, 3600)
    assert url == f"{SUPABASE_URL}/storage/v1/object/sign/generations/{VIDEO}?token=tok"
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == f"{SUPABASE_URL}/storage/v1/object/sign/generations/{VIDEO}"
    assert int(json.loads(request.content)["expiresIn"]) == 3600


async def test_supabase_exists_is_false_only_for_a_missing_object() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("here.mp4"):
            return httpx.Response(200, json={"id": "1", "name": "here.mp4"})
        return httpx.Response(
            404, json={"statusCode": "404", "error": "not_found", "message": "Object not found"}
        )

    storage = supabase(handler)
    assert await storage.exists("u/videos/here.mp4")
    assert not await storage.exists("u/videos/gone.mp4")


@pytest.mark.parametrize("status", [400, 403, 413, 500, 503])
async def test_supabase_upload_refusal_is_storage_unavailable(status: int) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await request.aread()
        body = {"statusCode": str(status), "error": "Error", "message": "Bucket not found"}
        return httpx.Response(status, json=body)

    storage = supabase(handler)
    with pytest.raises(StorageUnavailable, match="Bucket not found") as streamed:
        await storage.put_stream(VIDEO, chunks(10), "video/mp4")
    with pytest.raises(StorageUnavailable, match="Bucket not found") as stored:
        await storage.put_bytes(VIDEO, b"x", "video/mp4")
    with pytest.raises(StorageUnavailable, match="Bucket not found"):
        await storage.signed_url(VIDEO, 60)
    assert streamed.value.status == 503
    assert isinstance(stored.value.__cause__, Exception)


@pytest.mark.parametrize(
    "error",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("x")],
)
async def test_supabase_network_failures_are_storage_unavailable(error: httpx.HTTPError) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        raise error

    storage = supabase(handler)
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: storage.put_stream(VIDEO, chunks(10), "video/mp4"),
        lambda: storage.put_bytes(VIDEO, b"x", "video/mp4"),
        lambda: storage.signed_url(VIDEO, 60),
        lambda: storage.exists(VIDEO),
    ]
    for call in calls:
        with pytest.raises(StorageUnavailable) as caught:
            await call()
        assert caught.value.__cause__ is error


async def test_supabase_unreadable_answer_is_storage_unavailable() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>proxy</html>")

    with pytest.raises(StorageUnavailable, match="could not read"):
        await supabase(handler).signed_url(VIDEO, 60)


async def test_supabase_source_failure_passes_through_the_upload() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await request.aread()
        return httpx.Response(200, json={"Key": "k"})

    class SourceFailed(AppError):
        code = "source_failed"

    async def broken() -> AsyncIterator[bytes]:
        yield b"x"
        raise SourceFailed("source died")

    with pytest.raises(SourceFailed):
        await supabase(handler).put_stream(VIDEO, broken(), "video/mp4")
