"""Copying a finished video from the provider into storage.

Real HTTP on loopback (the Replicate emulator, and a small file server for odd answers) into a
real LocalStorage; error statuses through httpx.MockTransport.
"""

from __future__ import annotations

import base64
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from local.emulator import create_emulator_app
from local.emulator_faults import EmulatorConfig, Faults
from local.emulator_media import mp4_chunks, padded_size, sample_mp4, top_level_boxes
from local.serve import serve
from shared.core.errors import AppError
from shared.flows.outputs import OutputCopyError, copy_output
from shared.storage.local import LocalStorage

MB = 1024 * 1024
VIDEO = "user-1/videos/gen-1.mp4"
PROVIDER_URL = "https://replicate.delivery/x.mp4"  # answered by a mocked client
TOKEN = "r8_outputs_test_token"
SECRET = "whsec_" + base64.b64encode(b"outputs-test-signing-key-32bytes").decode()


def file_server() -> FastAPI:
    """Serves padded MP4s of any size, with or without Content-Length, under chosen types."""
    app = FastAPI()

    @app.get("/video")
    async def video(size: int = 0, ctype: str = "video/mp4", length: bool = True) -> Response:
        headers = {"Content-Length": str(padded_size(size))} if length else None
        return StreamingResponse(mp4_chunks(size), media_type=ctype, headers=headers)

    @app.get("/page")
    async def page() -> Response:
        return Response(b"<html>not a video</html>", media_type="text/html")

    @app.get("/blob")
    async def blob() -> Response:
        return Response(b"\x00" * 64, media_type="application/octet-stream")

    @app.get("/moved")
    async def moved() -> Response:
        return RedirectResponse("/video?size=200000", status_code=302)

    return app


@pytest.fixture(scope="module")
def source() -> Iterator[str]:
    with serve(file_server()) as base_url:
        yield base_url


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path, "http://localhost", "key")


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def copy(url: str, storage: LocalStorage, http: httpx.AsyncClient, max_bytes: int) -> int:
    return await copy_output(url, storage, VIDEO, client=http, max_bytes=max_bytes, timeout_s=60)


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def mocked(status: int, **kwargs: object) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, **kwargs)  # type: ignore[arg-type]

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_emulator_output_is_copied_whole_into_storage(
    storage: LocalStorage, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    config = EmulatorConfig(
        api_token=TOKEN, webhook_secret=SECRET, seed=1, faults=Faults(duration_s=0.05)
    )
    with serve(create_emulator_app(config)) as emulator:
        created = await http.post(
            f"{emulator}/v1/models/wan-video/wan-2.1-t2v-480p/predictions",
            json={"input": {"prompt": "a cat"}},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        record = (
            await http.get(
                f"{emulator}/__emulator/predictions/{created.json()['id']}", params={"wait": 10}
            )
        ).json()
        output = str(record["prediction"]["output"])
        copied = await copy(output, storage, http, max_bytes=10 * MB)
    stored = (tmp_path / VIDEO).read_bytes()
    assert copied == len(stored) == len(sample_mp4())
    assert stored == sample_mp4()


async def test_redirected_output_is_followed(
    source: str, storage: LocalStorage, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    assert await copy(f"{source}/moved", storage, http, max_bytes=MB) == 200_000
    assert top_level_boxes((tmp_path / VIDEO).read_bytes())[0][0] == "ftyp"


async def test_octet_stream_that_is_an_mp4_is_accepted(
    source: str, storage: LocalStorage, http: httpx.AsyncClient
) -> None:
    url = f"{source}/video?size=100000&ctype=application/octet-stream"
    assert await copy(url, storage, http, max_bytes=MB) == 100_000


async def test_octet_stream_that_is_not_an_mp4_is_refused(
    source: str, storage: LocalStorage, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    with pytest.raises(OutputCopyError, match="not an MP4") as caught:
        await copy(f"{source}/blob", storage, http, max_bytes=MB)
    assert not caught.value.retryable
    assert not (tmp_path / VIDEO).exists()


async def test_page_instead_of_a_video_is_refused(
    source: str, storage: LocalStorage, http: httpx.AsyncClient
) -> None:
    with pytest.raises(OutputCopyError, match="text/html") as caught:
        await copy(f"{source}/page", storage, http, max_bytes=MB)
    assert not caught.value.retryable
    assert caught.value.status == 502
    assert caught.value.code == "output_copy_failed"


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(f"size={3 * MB}", id="declared-size-refused-before-reading"),
        pytest.param(f"size={50 * MB}&length=false", id="undeclared-body-cut-off-past-the-cap"),
    ],
)
async def test_video_over_the_cap_is_refused_and_leaves_no_file(
    source: str, storage: LocalStorage, http: httpx.AsyncClient, tmp_path: Path, query: str
) -> None:
    with pytest.raises(OutputCopyError, match="larger than 1 MB") as caught:
        await copy(f"{source}/video?{query}", storage, http, max_bytes=MB)
    assert not caught.value.retryable
    assert files_under(tmp_path) == []


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(404, False), (410, False), (403, False), (429, True), (500, True), (503, True)],
)
async def test_error_status_says_whether_a_retry_can_help(
    storage: LocalStorage, status: int, retryable: bool
) -> None:
    async with mocked(status, text="nope") as client:
        with pytest.raises(OutputCopyError, match=f"HTTP {status}") as caught:
            await copy(PROVIDER_URL, storage, client, max_bytes=MB)
    assert caught.value.retryable is retryable
    assert caught.value.extra["source_status"] == status


@pytest.mark.parametrize(
    "error", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.ReadError("reset")]
)
async def test_network_failure_is_retryable(storage: LocalStorage, error: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(OutputCopyError) as caught:
            await copy(PROVIDER_URL, storage, client, max_bytes=MB)
    assert caught.value.retryable
    assert caught.value.__cause__ is error


async def test_empty_video_is_refused(storage: LocalStorage) -> None:
    async with mocked(200, content=b"", headers={"content-type": "video/mp4"}) as client:
        with pytest.raises(OutputCopyError, match="empty"):
            await copy(PROVIDER_URL, storage, client, max_bytes=MB)


async def test_storage_failure_is_not_mistaken_for_the_provider(
    source: str, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    blocker = tmp_path / "user-1"
    blocker.write_text("a file where a folder must go")
    storage = LocalStorage(tmp_path, "http://localhost", "key")
    with pytest.raises(AppError) as caught:
        await copy(f"{source}/video?size=1000", storage, http, max_bytes=MB)
    assert caught.value.code == "storage_unavailable"


async def test_copy_memory_does_not_grow_with_the_video(
    source: str, storage: LocalStorage, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    size = 64 * MB
    tracemalloc.start()
    try:
        copied = await copy(f"{source}/video?size={size}", storage, http, max_bytes=size)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert copied == size == (tmp_path / VIDEO).stat().st_size
    assert peak < 16 * MB, f"peak {peak / MB:.1f} MB"
