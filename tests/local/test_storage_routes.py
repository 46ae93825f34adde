"""The dev server's signed links to local files (local.storage_routes), served on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from local.serve import serve
from local.storage_routes import local_storage_router
from shared.core.errors import AppError
from shared.storage.local import LocalStorage
from shared.web.app import error_response
from tests.support import Clock, fetch_link_signed_for_another_file

KEY = "local-signing-key-for-tests"
VIDEO = "user-1/videos/gen-1.mp4"


def storage_app(storage: LocalStorage) -> FastAPI:
    app = FastAPI()
    app.include_router(local_storage_router(storage))

    @app.exception_handler(AppError)
    async def on_app_error(_: Request, exc: AppError) -> JSONResponse:
        return error_response(exc)

    return app


@pytest.fixture
def served(tmp_path: Path, clock: Clock) -> Iterator[LocalStorage]:
    """A LocalStorage whose links point at a running server for the same folder and key."""
    root = tmp_path / "storage"
    with serve(storage_app(LocalStorage(root, "http://unused", KEY, clock=clock))) as base_url:
        yield LocalStorage(root, base_url, KEY, clock=clock)


async def test_stored_file_is_served_under_its_signed_link(served: LocalStorage) -> None:
    await served.put_bytes(VIDEO, b"\x00\x00\x00\x18ftypmp42 video", "video/mp4")
    url = await served.signed_url(VIDEO, 60)
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
        head = await http.head(url)
    assert response.status_code == 200
    assert response.content == b"\x00\x00\x00\x18ftypmp42 video"
    assert response.headers["content-type"] == "video/mp4"
    assert head.status_code == 200
    assert head.content == b""


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("u/inputs/a.png", "image/png"), ("u/inputs/a.jpg", "image/jpeg"), ("u/a.webp", "image/webp")],
)
async def test_served_content_type_follows_the_extension(
    served: LocalStorage, path: str, content_type: str
) -> None:
    await served.put_bytes(path, b"bytes", content_type)
    async with httpx.AsyncClient() as http:
        response = await http.get(await served.signed_url(path, 60))
    assert response.headers["content-type"] == content_type


async def test_altered_signature_is_forbidden(served: LocalStorage) -> None:
    await served.put_bytes(VIDEO, b"video", "video/mp4")
    url = await served.signed_url(VIDEO, 60)
    last = url[-1]
    altered = url[:-1] + ("0" if last != "0" else "1")
    async with httpx.AsyncClient() as http:
        response = await http.get(altered)
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert "signature" in response.json()["detail"]


async def test_link_signed_for_another_file_is_forbidden(served: LocalStorage) -> None:
    response = await fetch_link_signed_for_another_file(served)
    assert response.status_code == 403
    assert b"other" not in response.content


async def test_extended_expiry_is_forbidden(served: LocalStorage) -> None:
    await served.put_bytes(VIDEO, b"video", "video/mp4")
    url = await served.signed_url(VIDEO, 60)
    expires = int(httpx.URL(url).params["expires"])
    async with httpx.AsyncClient() as http:
        response = await http.get(url.replace(f"expires={expires}", f"expires={expires + 3600}"))
    assert response.status_code == 403


async def test_expired_link_is_forbidden(served: LocalStorage, clock: Clock) -> None:
    await served.put_bytes(VIDEO, b"video", "video/mp4")
    url = await served.signed_url(VIDEO, 60)
    clock.now += 61
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
    assert response.status_code == 403
    body = response.json()
    assert (body["detail"], body["code"]) == ("This link has expired.", "forbidden")


async def test_unsigned_link_is_forbidden(served: LocalStorage) -> None:
    await served.put_bytes(VIDEO, b"video", "video/mp4")
    url = (await served.signed_url(VIDEO, 60)).split("?")[0]
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
        malformed = await http.get(url + "?expires=soon&signature=abc")
    assert response.status_code == 403
    assert malformed.status_code == 403


async def test_signed_link_to_a_missing_file_is_not_found(served: LocalStorage) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(await served.signed_url("user-1/videos/none.mp4", 60))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_traversal_through_the_server_is_refused(
    served: LocalStorage, tmp_path: Path
) -> None:
    (tmp_path / "secret.txt").write_text("secret")  # next to the storage folder
    base = (await served.signed_url(VIDEO, 60)).split("/storage/")[0]
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{base}/storage/..%2Fsecret.txt?expires=9999999999&signature=0")
    assert response.status_code in (403, 404)
    assert b"secret" not in response.content
