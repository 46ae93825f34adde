"""The Supabase emulator's Storage speaks the API as Supabase does: auth, errors in Storage's
shape, the TUS protocol's rules, buckets as supabase-py reads them."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jwt
import pytest
from supabase import AsyncClient, AsyncClientOptions

from local.secrets import LocalSecrets, api_key
from local.supabase.storage import standalone_storage_app
from local.supabase.storage_state import Bucket, StorageState
from shared.core.config import Settings

SECRET = "emulator-protocol-test-jwt-secret-0123"
KEY = api_key(SECRET, "service_role")
AUTH = {"Authorization": f"Bearer {KEY}", "apikey": KEY}
TUS = {**AUTH, "Tus-Resumable": "1.0.0"}
BASE = "http://supabase.test"
DEFAULTS = Settings(environment="test")


@pytest.fixture
async def emulator(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, StorageState]]:
    app, state = standalone_storage_app(
        tmp_path, SECRET, buckets=(Bucket("generations", file_size_limit=1000),)
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=f"{BASE}/storage/v1") as http:
        yield http, state


def metadata(**fields: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in fields.items())


async def create_upload(http: httpx.AsyncClient, length: int, name: str = "u/a.mp4") -> str:
    meta = metadata(bucketName="generations", objectName=name, contentType="video/mp4")
    response = await http.post(
        "/upload/resumable", headers={**TUS, "Upload-Length": str(length), "Upload-Metadata": meta}
    )
    assert response.status_code == 201, response.text
    assert response.headers["tus-resumable"] == "1.0.0"
    return response.headers["location"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 400),
        ({"Authorization": f"Bearer {KEY}"}, 400),  # no apikey
        ({"Authorization": "Bearer not-a-jwt", "apikey": "x"}, 400),
        (
            {
                "Authorization": "Bearer " + jwt.encode({"role": "authenticated"}, SECRET),
                "apikey": "anon",
            },
            403,
        ),
    ],
)
async def test_requests_without_the_service_role_are_refused(
    emulator: tuple[httpx.AsyncClient, StorageState], headers: dict[str, str], status: int
) -> None:
    http, _ = emulator
    response = await http.get("/bucket/generations", headers=headers)
    assert response.status_code == status
    body = response.json()
    assert body["statusCode"] == str(status)
    assert {"error", "message"} <= body.keys()


async def test_supabase_py_reads_and_creates_buckets(
    emulator: tuple[httpx.AsyncClient, StorageState],
) -> None:
    http, _ = emulator
    client = AsyncClient(BASE, KEY, AsyncClientOptions(httpx_client=http))
    bucket = await client.storage.get_bucket("generations")
    assert (bucket.public, bucket.file_size_limit) == (False, 1000)
    await client.storage.create_bucket("other", options={"public": False, "file_size_limit": 5})
    assert (await client.storage.get_bucket("other")).file_size_limit == 5
    missing = await http.get("/bucket/nope", headers=AUTH)
    assert missing.status_code == 404


async def test_tus_chunk_at_the_wrong_offset_is_a_conflict(
    emulator: tuple[httpx.AsyncClient, StorageState],
) -> None:
    http, state = emulator
    location = await create_upload(http, 10)
    patch = {**TUS, "Content-Type": "application/offset+octet-stream"}
    wrong = await http.patch(location, content=b"abc", headers={**patch, "Upload-Offset": "5"})
    first = await http.patch(location, content=b"abcd", headers={**patch, "Upload-Offset": "0"})
    head = await http.head(location, headers=TUS)
    rest = await http.patch(location, content=b"efghij", headers={**patch, "Upload-Offset": "4"})
    assert wrong.status_code == 409
    assert (first.status_code, first.headers["upload-offset"]) == (204, "4")
    assert (head.headers["upload-offset"], head.headers["upload-length"]) == ("4", "10")
    assert head.headers["cache-control"] == "no-store"
    assert rest.status_code == 204
    assert state.object("generations", "u/a.mp4").file.read_bytes() == b"abcdefghij"
    assert (await http.head(location, headers=TUS)).status_code == 404  # finished: gone


async def test_tus_requires_its_version_and_content_type(
    emulator: tuple[httpx.AsyncClient, StorageState],
) -> None:
    http, _ = emulator
    location = await create_upload(http, 10)
    no_version = await http.patch(
        location,
        content=b"a",
        headers={**AUTH, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
    )
    wrong_type = await http.patch(
        location, content=b"a", headers={**TUS, "Upload-Offset": "0", "Content-Type": "text/plain"}
    )
    assert no_version.status_code == 412
    assert wrong_type.status_code == 415


async def test_tus_upload_over_the_bucket_limit_is_refused_at_creation(
    emulator: tuple[httpx.AsyncClient, StorageState],
) -> None:
    http, state = emulator
    meta = metadata(bucketName="generations", objectName="u/big.mp4")
    response = await http.post(
        "/upload/resumable", headers={**TUS, "Upload-Length": "1001", "Upload-Metadata": meta}
    )
    assert response.status_code == 413
    assert response.json()["statusCode"] == "413"
    assert state.uploads == {}


async def test_tus_terminated_upload_leaves_nothing(
    emulator: tuple[httpx.AsyncClient, StorageState],
) -> None:
    http, state = emulator
    location = await create_upload(http, 10)
    assert (await http.delete(location, headers=TUS)).status_code == 204
    assert state.uploads == {}
    assert not list((state.root / ".tus").iterdir())


async def test_upload_without_upsert_does_not_replace(
    emulator: tuple[httpx.AsyncClient, StorageState],
) -> None:
    http, state = emulator
    first = await http.post("/object/generations/u/a.png", content=b"one", headers=AUTH)
    again = await http.post("/object/generations/u/a.png", content=b"two", headers=AUTH)
    upsert = await http.post(
        "/object/generations/u/a.png", content=b"three", headers={**AUTH, "x-upsert": "true"}
    )
    too_big = await http.post("/object/generations/u/b.png", content=b"x" * 1001, headers=AUTH)
    assert first.json()["Key"] == "generations/u/a.png"
    assert again.status_code == 409
    assert upsert.status_code == 200
    assert too_big.status_code == 413
    assert (await http.get("/object/generations/u/a.png", headers=AUTH)).content == b"three"
    assert ("generations", "u/b.png") not in state.objects


async def test_objects_on_disk_are_served_again_after_a_restart(tmp_path: Path) -> None:
    first, _ = standalone_storage_app(tmp_path, SECRET, buckets=(Bucket("generations"),))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=first), base_url=f"{BASE}/storage/v1"
    ) as http:
        stored = await http.post("/object/generations/u/videos/a.mp4", content=b"v", headers=AUTH)
        assert stored.status_code == 200
    _, restarted = standalone_storage_app(tmp_path, SECRET, buckets=(Bucket("generations"),))
    again = restarted.object("generations", "u/videos/a.mp4")
    assert (again.size, again.content_type) == (1, "video/mp4")


# --- Storage inside the whole emulator (local.supabase.app), as the local stack runs it --------


@pytest.fixture
async def supabase(supabase_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=supabase_url, timeout=10) as client:
        yield client


def service(secrets: LocalSecrets) -> dict[str, str]:
    key = secrets.service_role_key
    return {"Authorization": f"Bearer {key}", "apikey": key}


async def test_emulator_starts_with_the_private_bucket_limited_to_max_output_bytes(
    supabase: httpx.AsyncClient, local_secrets: LocalSecrets
) -> None:
    key = local_secrets.service_role_key
    client = AsyncClient(str(supabase.base_url), key, AsyncClientOptions(httpx_client=supabase))
    bucket = await client.storage.get_bucket(DEFAULTS.storage_bucket)
    assert (bucket.public, bucket.file_size_limit) == (False, DEFAULTS.max_output_bytes)


async def test_gateway_wants_an_apikey_for_storage_but_not_for_a_signed_download(
    supabase: httpx.AsyncClient, local_secrets: LocalSecrets
) -> None:
    headers = service(local_secrets)
    stored = await supabase.post(
        "/storage/v1/object/generations/u/a.mp4", content=b"video", headers=headers
    )
    assert stored.status_code == 200, stored.text
    signed = await supabase.post(
        "/storage/v1/object/sign/generations/u/a.mp4", json={"expiresIn": 60}, headers=headers
    )
    link = "/storage/v1" + signed.json()["signedURL"]
    assert (await supabase.get(link)).content == b"video"  # no apikey, no bearer
    bare = await supabase.get(
        "/storage/v1/object/generations/u/a.mp4", headers={"Authorization": headers["apikey"]}
    )
    assert (bare.status_code, bare.json()["message"]) == (401, "No API key found in request")


async def test_faults_aim_at_one_method_and_count_through_the_http_control(
    supabase: httpx.AsyncClient, local_secrets: LocalSecrets
) -> None:
    headers = service(local_secrets)
    knobs = {"error_rate": 1.0, "error_status": 500, "methods": ["PUT"], "skip": 1, "times": 1}
    assert (await supabase.post("/__emulator/faults", json=knobs)).status_code == 200
    url = "/storage/v1/object/generations/u/b.png"
    answers = [(await supabase.put(url, content=b"x", headers=headers)) for _ in range(3)]
    listed = await supabase.post("/storage/v1/object/list/generations", json={}, headers=headers)
    assert [a.status_code for a in answers] == [200, 500, 200]
    assert answers[1].json()["statusCode"] == "500"  # Storage's shape, not PostgREST's
    assert listed.status_code == 200  # another method: untouched
    bad = await supabase.post("/__emulator/faults", json={"methods": ["BREW"]})
    assert bad.status_code == 422
