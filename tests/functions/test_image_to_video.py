"""Image-to-video end to end: the upload is checked by its bytes, kept, shown to the provider
inline or by a signed link, and the finished video is kept in our storage."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from PIL import Image

from shared.core.config import Settings
from tests.functions.conftest import Stack, both_configs
from tests.support import balance

URL = "/api/generation/image-to-video"
FIELDS = {"prompt": "the lighthouse beam sweeps the fog", "model": "i2v-14B", "resolution": "480p"}


def png(side: int = 96, *, noisy: bool = False) -> bytes:
    image = Image.new("RGB", (side, side), (30, 120, 200))
    if noisy:  # random pixels do not compress: the file stays large
        image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def gif() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (96, 96)).save(buf, format="GIF")
    return buf.getvalue()


async def upload(
    stack: Stack, headers: dict[str, str], data: bytes | None, **fields: str
) -> dict[str, object]:
    files = {"image": ("picture.png", data, "image/png")} if data is not None else None
    response = await stack.api.post(
        URL,
        data={**FIELDS, **fields},
        files=files,
        headers=headers,
    )
    body: dict[str, object] = response.json()
    body["_status"] = response.status_code
    return body


async def provider_input(stack: Stack, generation_id: str) -> dict[str, object]:
    record = (await stack.settle(generation_id))["prediction"]
    assert isinstance(record, dict)
    model_input = record["input"]
    assert isinstance(model_input, dict)
    return model_input


@both_configs
async def test_image_to_video_end_to_end_keeps_input_and_video(
    stack: Stack, expired_link: Callable[[str], Awaitable[str]]
) -> None:
    user, headers = await stack.user(credits=100)
    created = await upload(stack, headers, png())
    assert created["_status"] == 201, created
    gen_id = str(created["id"])
    assert created["kind"] == "i2v"
    assert await balance(stack.admin, user) == 90

    final = await stack.kept(gen_id, headers)
    assert final["status"] == "completed"
    cur = await stack.admin.execute(
        "select input_image_path, video_path from public.generations where id = %s",
        (uuid.UUID(gen_id),),
    )
    input_path, video_path = await cur.fetchone() or (None, None)
    assert str(input_path).startswith(f"{user}/inputs/")
    assert video_path == f"{user}/videos/{gen_id}.mp4"

    link = str(final["video_url"])
    assert link.startswith(stack.stored_links), link
    video = await stack.api.get(link)
    assert video.status_code == 200
    assert video.content[4:8] == b"ftyp"
    # The local folder's links (API, 403) or Supabase Storage's (its own 400, as Storage does).
    refused = 403 if stack.mode == "direct" else 400
    altered = link.replace(stack.link_signature, stack.link_signature + "0")
    assert (await stack.api.get(altered)).status_code == refused
    unsigned = link.split("?")[0]
    assert (await stack.api.get(unsigned)).status_code == refused
    expired = await expired_link(str(video_path))
    assert (await stack.api.get(expired)).status_code == refused


async def test_small_image_goes_inline_large_one_by_signed_link(stack: Stack) -> None:
    _, headers = await stack.user(credits=100)
    small = await upload(stack, headers, png(96))
    large_bytes = png(400, noisy=True)
    assert len(large_bytes) > 256 * 1024
    large = await upload(stack, headers, large_bytes)
    assert (small["_status"], large["_status"]) == (201, 201)
    small_ref = (await provider_input(stack, str(small["id"])))["image"]
    large_ref = (await provider_input(stack, str(large["id"])))["image"]
    assert str(small_ref).startswith("data:image/png;base64,")
    assert str(large_ref).startswith(stack.stored_links)
    # ... and the emulator could fetch it, or the create failed.
    assert stack.link_signature in str(large_ref)


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"this is text, not pixels" * 10, 422, "invalid_input"),
        (png(128)[:-200], 422, "invalid_input"),
        (gif(), 415, "unsupported_media_type"),
        (b"just some words in a file", 415, "unsupported_media_type"),
        (png(16), 422, "invalid_input"),
        (b"\0" * (11 * 1024 * 1024), 413, "payload_too_large"),
        (None, 422, "invalid_input"),
    ],
    ids=["text-as-png", "truncated-png", "gif", "text", "too-small", "11MB", "no-image"],
)
async def test_refused_images_charge_nothing(
    stack: Stack, data: bytes | None, status: int, code: str
) -> None:
    user, headers = await stack.user(credits=100)
    body = await upload(stack, headers, data)
    assert (body["_status"], body["code"]) == (status, code), body
    assert isinstance(body["detail"], str)
    assert await balance(stack.admin, user) == 100
    cur = await stack.admin.execute("select count(*) from public.generations")
    assert await cur.fetchone() == (0,)


async def test_json_body_is_415(stack: Stack) -> None:
    _, headers = await stack.user()
    response = await stack.api.post(URL, json=FIELDS, headers=headers)
    assert response.status_code == 415


async def test_text_model_is_refused_before_the_image_is_kept(stack: Stack) -> None:
    user, headers = await stack.user()
    body = await upload(stack, headers, png(), model="t2v-14B")
    assert (body["_status"], body["code"]) == (422, "invalid_input")
    assert await balance(stack.admin, user) == 100


async def test_unauthenticated_upload_is_401(stack: Stack) -> None:
    body = await upload(stack, {}, png())
    assert body["_status"] == 401


async def test_retry_of_failed_i2v_shows_the_stored_image_again(stack: Stack) -> None:
    await stack.faults(fail_rate=1.0, duration_s=0.05)
    user, headers = await stack.user(credits=100)
    failed = await upload(stack, headers, png())
    await stack.settle(str(failed["id"]))
    await stack.faults(fail_rate=0.0)
    retried = await stack.api.post(f"/api/generation/{failed['id']}/retry", headers=headers)
    assert retried.status_code == 201, retried.text
    ref = (await provider_input(stack, retried.json()["id"]))["image"]
    assert str(ref).startswith(stack.stored_links)
    assert await balance(stack.admin, user) == 90


def _stored_inputs(settings_storage_dir: Path, user: uuid.UUID) -> list[str]:
    folder = settings_storage_dir / str(user) / "inputs"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


async def test_a_refused_create_stores_no_image(stack: Stack, settings: Settings) -> None:
    """No credits (402) or a replayed key: the image is checked, but nothing is kept for a
    request that makes no generation, so uploads cannot fill the bucket for free."""
    storage_dir = Path(settings.storage_local_dir)
    broke, broke_headers = await stack.user(credits=0)
    body = await upload(stack, broke_headers, png(noisy=True))
    assert (body["_status"], body["code"]) == (402, "insufficient_credits"), body
    assert _stored_inputs(storage_dir, broke) == []

    user, headers = await stack.user(credits=100)
    keyed = {**headers, "Idempotency-Key": "same-upload"}
    first = await upload(stack, keyed, png())
    assert first["_status"] == 201, first
    assert len(_stored_inputs(storage_dir, user)) == 1
    replayed = await upload(stack, keyed, png())
    assert (replayed["_status"], replayed["id"]) == (200, first["id"])
    other = await upload(stack, keyed, png(side=120))  # another image under the same key
    assert (other["_status"], other["code"]) == (409, "idempotency_conflict"), other
    assert len(_stored_inputs(storage_dir, user)) == 1
    assert await balance(stack.admin, user) == 90


@pytest.mark.parametrize("stack_mode", ["supabase"])
async def test_storage_refusing_the_image_fails_and_refunds_the_generation(
    stack: Stack, supabase_url: str
) -> None:
    user, headers = await stack.user(credits=100)
    async with httpx.AsyncClient(base_url=supabase_url) as supabase:
        knobs = {"error_rate": 1.0, "error_status": 503, "path_prefix": "/storage/"}
        assert (await supabase.post("/__emulator/faults", json=knobs)).status_code == 200
        body = await upload(stack, headers, png())
        await supabase.post("/__emulator/reset")
    assert (body["_status"], body["code"]) == (503, "storage_unavailable"), body
    assert body["refunded"] is True
    assert body["balance"] == 100
    assert await balance(stack.admin, user) == 100
    cur = await stack.admin.execute(
        "select status, error_message from public.generations where id = %s",
        (uuid.UUID(str(body["generation_id"])),),
    )
    status, error = await cur.fetchone() or (None, None)
    assert status == "failed"
    assert "image could not be kept" in str(error)
    # Nothing reached the provider: the emulator never saw a prediction.
    assert (await stack.emulator.get("/__emulator/predictions")).json() == []
