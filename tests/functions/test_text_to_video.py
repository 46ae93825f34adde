"""Text-to-video end to end: HTTP -> SQL -> the real replicate client -> emulator -> webhooks."""

from __future__ import annotations

import asyncio
import time
import uuid

import jwt
import pytest

from tests.functions.conftest import Stack, both_configs
from tests.support import balance


@both_configs
async def test_generation_goes_from_queued_to_completed(stack: Stack) -> None:
    await stack.faults(duration_s=1.5)
    user, headers = await stack.user(credits=100)
    response = await stack.submit(headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "processing"
    assert created["credits_remaining"] == 90
    assert created["generation_id"] == created["id"]
    assert await balance(stack.admin, user) == 90

    seen: list[int] = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        current = (await stack.status(created["id"], headers)).json()
        seen.append(current["progress"])
        if current["status"] == "completed":
            break
        await asyncio.sleep(0.02)  # pacing of the observer, not a timing assumption
    assert current["status"] == "completed"
    assert current["progress"] == 100
    assert seen == sorted(seen), f"progress went backwards: {seen}"
    assert any(0 < p < 100 for p in seen), f"no intermediate progress observed: {seen}"
    assert await balance(stack.admin, user) == 90

    # The video is copied into our storage right after completion; then status links our copy.
    current = await stack.kept(created["id"], headers)
    link = str(current["video_url"])
    assert link.startswith(stack.stored_links), link
    video = await stack.api.get(link)
    assert video.status_code == 200
    assert video.headers["content-type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp"


@both_configs
async def test_insufficient_credits_is_402_with_detail(stack: Stack) -> None:
    user, headers = await stack.user(credits=5)
    response = await stack.submit(headers)
    assert response.status_code == 402
    body = response.json()
    assert body["code"] == "insufficient_credits"
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body["balance"] == 5
    assert body["required"] == 10
    assert await balance(stack.admin, user) == 5


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "too short"}, "prompt"),
        ({"prompt": "x" * 501}, "prompt"),
        ({"model": "t2v-99B"}, "model"),
        ({"model": "t2v-1.3B", "resolution": "720p"}, "resolution"),
        ({"resolution": "4k"}, "resolution"),
        ({"seed": -1}, "seed"),
        ({"aspect_ratio": "4:3"}, "aspect_ratio"),
        ({"surprise": True}, "surprise"),
        ({"prompt": 12345678901}, "prompt"),
    ],
)
async def test_invalid_input_is_422_with_a_readable_detail(
    stack: Stack, body: dict[str, object], field: str
) -> None:
    user, headers = await stack.user()
    response = await stack.submit(headers, **body)
    assert response.status_code == 422, response.text
    data = response.json()
    assert data["code"] == "invalid_input"
    assert isinstance(data["detail"], str)
    assert field in data["detail"] or data.get("field") == field
    assert await balance(stack.admin, user) == 100


async def test_malformed_json_is_422(stack: Stack) -> None:
    user, headers = await stack.user()
    response = await stack.api.post(
        "/api/generation/text-to-video",
        content=b'{"prompt": "unterminated',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["detail"] == "The request body is not valid JSON."
    assert await balance(stack.admin, user) == 100


def _forged_tokens(user: uuid.UUID, stack: Stack) -> dict[str, str | None]:
    now = int(time.time())
    claims = {"sub": str(user), "aud": "authenticated", "role": "authenticated", "exp": now + 60}
    return {
        "missing": None,
        "garbage": "Bearer not-a-token",
        "wrong scheme": f"Basic {stack.token(user)}",
        "forged": "Bearer " + jwt.encode(claims, "another-secret-of-32-bytes-or-more!!", "HS256"),
        "expired": "Bearer " + stack.token(user, ttl_s=-120),
        "alg none": "Bearer " + jwt.encode(claims, key="", algorithm="none"),
    }


@both_configs
@pytest.mark.parametrize(
    "kind", ["missing", "garbage", "wrong scheme", "forged", "expired", "alg none"]
)
async def test_bad_tokens_are_401(stack: Stack, kind: str) -> None:
    user, _ = await stack.user()
    value = _forged_tokens(user, stack)[kind]
    headers = {} if value is None else {"Authorization": value}
    response = await stack.submit(headers)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert await balance(stack.admin, user) == 100


@both_configs
async def test_another_users_generation_is_404(stack: Stack) -> None:
    _, owner = await stack.user()
    _, stranger = await stack.user()
    created = (await stack.submit(owner)).json()
    assert (await stack.status(created["id"], stranger)).status_code == 404
    assert (await stack.status("not-a-uuid", owner)).status_code == 404
    assert (await stack.status(str(uuid.uuid4()), owner)).json()["code"] == "not_found"


@both_configs
async def test_concurrent_status_reads_each_get_their_own_answer(stack: Stack) -> None:
    """Reads arriving together share database calls (read_generations); a stranger's read in
    the same batch is a 404 for that read alone."""
    _, owner = await stack.user()
    _, stranger = await stack.user()
    gid = (await stack.submit(owner)).json()["id"]
    answers = await asyncio.gather(*(stack.status(gid, h) for h in [owner, stranger] * 12))
    assert [a.status_code for a in answers] == [200, 404] * 12
    assert {a.json()["id"] for a in answers[::2]} == {gid}
    assert {a.json()["code"] for a in answers[1::2]} == {"not_found"}


@both_configs
@pytest.mark.parametrize(
    ("fault", "status"),
    [
        ({"create_error_status": 500}, 503),
        ({"create_error_status": 503}, 503),
        ({"create_error_status": 429}, 503),
        ({"create_error_status": 422}, 502),
        # No answer within replicate_timeout_s, and no webhook ever arrives.
        ({"create_delay_s": 5.0, "webhook_drop_rate": 1.0}, 503),
    ],
)
async def test_provider_refusal_refunds_and_says_so(
    stack: Stack, fault: dict[str, object], status: int
) -> None:
    await stack.faults(**fault)
    user, headers = await stack.user(credits=100)
    response = await stack.submit(headers)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["refunded"] is True
    assert body["balance"] == 100
    assert "credits were returned" in body["detail"]
    assert await balance(stack.admin, user) == 100
    generation = (await stack.status(body["generation_id"], headers)).json()
    assert generation["status"] == "failed"


async def test_create_timeout_whose_prediction_reports_in_is_not_refunded(stack: Stack) -> None:
    # The create answers too late, but the prediction exists and its webhooks (which carry our
    # generation id) arrive first: the user gets the generation, charged once, not an error.
    await stack.faults(create_delay_s=5.0, duration_s=0.1)
    user, headers = await stack.user(credits=100)
    response = await stack.submit(headers)
    assert response.status_code == 201, response.text
    generation = response.json()
    assert generation["status"] in ("processing", "completed")
    await stack.settle(generation["id"])
    final = (await stack.status(generation["id"], headers)).json()
    assert final["status"] == "completed"
    assert await balance(stack.admin, user) == 90


@both_configs
async def test_idempotency_key_replay_returns_same_generation(stack: Stack) -> None:
    user, headers = await stack.user(credits=100)
    keyed = {**headers, "Idempotency-Key": "create-1"}
    first = await stack.submit(keyed)
    again = await stack.submit(keyed)
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["replayed"] is True
    assert await balance(stack.admin, user) == 90
    conflict = await stack.submit(keyed, prompt="a completely different prompt here")
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "idempotency_conflict"


async def test_bad_idempotency_key_is_422(stack: Stack) -> None:
    _, headers = await stack.user()
    response = await stack.submit({**headers, "Idempotency-Key": "x" * 300})
    assert response.status_code == 422


async def test_too_large_body_is_413(stack: Stack) -> None:
    _, headers = await stack.user()
    response = await stack.submit(headers, negative_prompt="x" * 200_000)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


async def test_errors_carry_the_request_id(stack: Stack) -> None:
    response = await stack.api.post(
        "/api/generation/text-to-video", json={}, headers={"X-Request-ID": "trace-123"}
    )
    assert response.headers["x-request-id"] == "trace-123"
    assert response.json()["request_id"] == "trace-123"


async def test_cors_preflight_allows_configured_origin(stack: Stack) -> None:
    response = await stack.api.options(
        "/api/generation/text-to-video",
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
    denied = await stack.api.options(
        "/api/generation/text-to-video",
        headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in denied.headers
