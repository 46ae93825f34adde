"""Hostile text from users and odd reports from the provider: a clean 4xx or an applied update,
never a 500, and every error body in our shape. Fuzzed with hypothesis over the HTTP layer
(httpx's ASGITransport against the real app, the real database and the emulator)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from local.devserver import create_app
from local.tokens import mint_token
from shared import wiring
from shared.core.config import Settings
from shared.web.signatures import signed_headers
from tests.functions.conftest import Stack
from tests.support import AdminConn, balance, create_user, ledger_types

T2V = "/api/generation/text-to-video"
I2V = "/api/generation/image-to-video"
WEBHOOK = "/api/webhooks/replicate"
PROMPT = "a paper boat drifting down a rainy street"
# What Postgres (text, jsonb) or a JSON encoder cannot take, and what merely looks odd.
NASTY = [
    "\x00",
    "\ud800",
    "\udfff",
    "\x1b[31m",
    "\x7f",
    "\u202e",
    "\ufffe",
    "\U0010ffff",
    "\\u0000",
]
fuzz = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# st.text() leaves out surrogates unless asked; a JSON body can carry them all the same.
any_text = st.lists(st.characters(exclude_categories=()) | st.sampled_from(NASTY), max_size=30).map(
    "".join
)


def assert_clean(response: httpx.Response) -> None:
    """Never a 500; an error is JSON with a string `detail` and `code`."""
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body["detail"], str), body
        assert isinstance(body["code"], str), body


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"replicate_timeout_s": 2.0, "max_active_generations": 10_000}


@pytest.fixture
async def asgi(settings: Settings, emulator_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The dev server's app in-process (ASGITransport runs no lifespan: the services are opened
    here by the same builder, and closed after the test)."""
    async with httpx.AsyncClient(base_url=emulator_url) as emulator:
        # The emulator keeps every prediction running: no webhook goes to a server not there.
        await emulator.post("/__emulator/faults", json={"duration_s": 600})
    app = create_app(settings=settings)
    async with wiring.every_group(settings) as registry:
        app.state.services = registry
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


async def auth(settings: Settings, admin: AdminConn) -> dict[str, str]:
    secret = settings.supabase_jwt_secret
    assert secret is not None
    user = await create_user(admin, credits=1_000_000)
    return {"Authorization": f"Bearer {mint_token(secret.get_secret_value(), user)}"}


def json_body(**fields: object) -> bytes:
    # ensure_ascii: a lone surrogate travels as a \ud800 escape, which JSON allows.
    body = {"prompt": PROMPT, "model": "t2v-14B", "resolution": "480p", **fields}
    return json.dumps(body, ensure_ascii=True).encode()


async def test_unstorable_characters_in_a_prompt_are_a_422_and_odd_ones_are_kept(
    asgi: httpx.AsyncClient, settings: Settings, admin: AdminConn
) -> None:
    headers = {**await auth(settings, admin), "Content-Type": "application/json"}
    for field in ("prompt", "negative_prompt"):
        for nasty in NASTY:
            value = f"{PROMPT[:20]}{nasty}{PROMPT[20:]}"
            response = await asgi.post(T2V, content=json_body(**{field: value}), headers=headers)
            assert_clean(response)
            if nasty in ("\x00", "\ud800", "\udfff", "\x1b[31m", "\x7f"):
                assert response.status_code == 422, (field, nasty, response.text)
                assert field in response.json()["detail"]
            else:
                assert response.status_code == 201, (field, nasty, response.text)
                assert response.json()[field] == value


@fuzz
@given(prompt=any_text, negative=st.none() | any_text, model=any_text, seed=st.integers())
async def test_any_json_create_is_answered_cleanly(
    asgi: httpx.AsyncClient,
    settings: Settings,
    admin: AdminConn,
    prompt: str,
    negative: str | None,
    model: str,
    seed: int,
) -> None:
    headers = {**await auth(settings, admin), "Content-Type": "application/json"}
    for body in (
        json_body(prompt=PROMPT + prompt, negative_prompt=negative, seed=seed),
        json_body(prompt=PROMPT, model=model),
    ):
        assert_clean(await asgi.post(T2V, content=body, headers=headers))


@fuzz
@given(raw=st.binary(max_size=80))
async def test_any_bytes_as_a_json_body_are_answered_cleanly(
    asgi: httpx.AsyncClient, settings: Settings, admin: AdminConn, raw: bytes
) -> None:
    headers = {**await auth(settings, admin), "Content-Type": "application/json"}
    assert_clean(await asgi.post(T2V, content=raw, headers=headers))
    assert_clean(await asgi.post(T2V, content=b'{"prompt": "' + raw + b'"}', headers=headers))


@fuzz
@given(value=st.binary(max_size=40).filter(lambda b: b"\r\n" not in b), name=st.sampled_from(
    ["prompt", "negative_prompt", "model", "resolution", "seed", "aspect_ratio"]
))  # fmt: skip
async def test_any_bytes_in_a_form_field_are_answered_cleanly(
    asgi: httpx.AsyncClient, settings: Settings, admin: AdminConn, value: bytes, name: str
) -> None:
    headers = await auth(settings, admin)
    boundary = "b0undary"
    fields = {"prompt": PROMPT.encode(), "model": b"i2v-14B", "resolution": b"480p"}
    fields[name] = PROMPT.encode() + value if name == "prompt" else value
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode() + v
        for k, v in fields.items()
    ]
    body = b"\r\n".join([*parts, f"--{boundary}--\r\n".encode()])
    response = await asgi.post(
        I2V,
        content=body,
        headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert_clean(response)  # no image: a 422, whatever the fields hold


async def test_a_huge_or_odd_seed_is_a_422(
    asgi: httpx.AsyncClient, settings: Settings, admin: AdminConn
) -> None:
    headers = {**await auth(settings, admin), "Content-Type": "application/json"}
    for seed in (10**30, -1, 2**31, "1e400", "NaN", "0x10", 1e400):
        response = await asgi.post(T2V, content=json_body(seed=seed), headers=headers)
        assert_clean(response)
        assert response.status_code == 422, (seed, response.text)


@fuzz
@given(
    key=st.binary(min_size=1, max_size=40),
    authorization=st.binary(max_size=40),
    request_id=st.binary(max_size=40),
)
async def test_any_header_bytes_are_answered_cleanly(
    asgi: httpx.AsyncClient,
    settings: Settings,
    admin: AdminConn,
    key: bytes,
    authorization: bytes,
    request_id: bytes,
) -> None:
    headers = await auth(settings, admin)
    cleaned = [(k.encode(), v.encode()) for k, v in headers.items()]
    hostile = [(b"idempotency-key", key), (b"x-request-id", request_id)]
    for extra in (hostile, [(b"authorization", authorization)]):
        base = [] if extra[0][0] == b"authorization" else cleaned
        response = await asgi.post(
            T2V,
            content=json_body(),
            headers=[*base, *extra, (b"content-type", b"application/json")],
        )
        assert_clean(response)


@fuzz
@given(
    tail=any_text,
    authorization=st.none()
    | st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=60),
)
@example(tail="/", authorization=None)  # once found: the router's redirect, not a 404
@example(tail="a/b", authorization="Bearer x")
async def test_any_status_path_or_token_is_answered_cleanly(
    asgi: httpx.AsyncClient,
    settings: Settings,
    admin: AdminConn,
    tail: str,
    authorization: str | None,
) -> None:
    # The status read's express lane parses the path and the header itself: whatever arrives
    # (percent-encoded bytes, slashes, surrogates, a token of any shape) is a clean 4xx.
    path = "/api/generation/status/" + quote(tail.encode("utf-8", "surrogatepass"), safe="")
    # httpx sends str header values as ASCII only; a client may send any latin-1 byte.
    headers: dict[bytes, bytes] = {}
    if authorization is not None:
        headers[b"authorization"] = authorization.encode("latin-1")
    response = await asgi.get(path, headers=headers)
    assert_clean(response)
    # A real user's token: the tail is then parsed as an id (a 404 unless it is theirs).
    owned = await asgi.get(path, headers=await auth(settings, admin))
    assert_clean(owned)
    # No tail at all is the router's redirect to the slash-less path (no such route either).
    # A tail with a slash is no single path segment, so the router answers it too: a 404, or,
    # when it ends with a slash, the same redirect to the path without it (e.g. tail "/").
    redirect = () if tail and "/" not in tail else (307,)
    assert owned.status_code in ((404,) if tail else ()) + redirect, owned.text
    assert response.status_code in ((401, 404) if tail else ()) + redirect, response.text


async def test_framework_errors_have_our_error_shape(asgi: httpx.AsyncClient) -> None:
    for method, path, status, code in [
        ("GET", "/api/nowhere", 404, "not_found"),
        ("PATCH", T2V, 405, "method_not_allowed"),
        ("PUT", "/api/generation/status/x", 405, "method_not_allowed"),
    ]:
        response = await asgi.request(method, path)
        assert response.status_code == status
        assert response.json()["code"] == code
        assert isinstance(response.json()["detail"], str)


async def test_multipart_limits_have_our_error_shape(
    asgi: httpx.AsyncClient, settings: Settings, admin: AdminConn
) -> None:
    headers = await auth(settings, admin)
    too_many = {f"f{i}": "x" for i in range(40)}
    response = await asgi.post(I2V, data=too_many, files={"image": b"x"}, headers=headers)
    assert 400 <= response.status_code < 500
    assert_clean(response)


# --- the provider's side ------------------------------------------------------------------


async def delivered(stack: Stack, generation_id: str, payload: dict[str, object]) -> int:
    body = json.dumps(payload, ensure_ascii=True).encode()
    headers = signed_headers(
        stack.secrets.webhook_secret, f"msg_{uuid.uuid4().hex}", int(time.time()), body
    )
    response = await stack.api.post(
        WEBHOOK, params={"generation_id": generation_id}, content=body, headers=headers
    )
    assert_clean(response)
    return response.status_code


ODD_FAILURES: list[dict[str, object]] = [
    {"error": "CUDA out of memory\x00\x00 at step 3"},
    {"error": "bad \ud800 surrogate"},
    {"error": {"message": "nested\x00", "trace": ["\udfff"] * 3}},
    {"error": "x" * 100_000},
    {"error": "boom", "logs": "50%|\x00\ud800| 25/50 [", "output": ["\x00"]},
    {"error": "\x00"},
    {"error": "boom", "metrics": [1, 2]},
    {"error": "boom", "metrics": {"predict_time": "NaN"}},
    {"error": "boom", "metrics": {"predict_time": 1e308}},
]
UNSTORABLE_OUTPUTS = [
    "https://replicate.delivery/x/out\x00.mp4",
    "https://replicate.delivery/\ud800.mp4",
]


async def test_a_report_with_any_bytes_is_applied_and_refunded(stack: Stack) -> None:
    """A failure whatever its error, logs or output hold; a success whose output URL cannot
    be stored: each ends failed and refunded once."""
    await stack.faults(webhook_drop_rate=1.0, duration_s=600)
    reports: list[dict[str, object]] = [
        {"status": "failed", "logs": "", "output": None, **odd} for odd in ODD_FAILURES
    ] + [{"status": "succeeded", "output": url} for url in UNSTORABLE_OUTPUTS]
    for report in reports:
        user, headers = await stack.user(credits=100)
        gen_id = (await stack.submit(headers)).json()["id"]
        payload = {"id": await stack.job_id(gen_id), **report}
        assert await delivered(stack, gen_id, payload) == 200, report
        row = await (
            await stack.admin.execute(
                "select status, error_message from public.generations where id = %s", (gen_id,)
            )
        ).fetchone()
        assert row is not None
        assert row[0] == "failed", report
        assert row[1], report
        assert await balance(stack.admin, user) == 100
        assert await ledger_types(stack.admin, uuid.UUID(gen_id)) == ["deduction", "refund"]
