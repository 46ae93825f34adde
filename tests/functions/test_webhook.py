"""The webhook endpoint: signature first, then a state machine that shrugs off replays."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from functions import webhook
from shared.core.config import Settings
from shared.core.domain import Generation
from shared.db.rpc import Rpc
from shared.web.signatures import signed_headers
from shared.wiring import open_transport
from tests.functions.conftest import Stack, both_configs
from tests.support import balance, ledger_types

URL = "/api/webhooks/replicate"


async def running_generation(stack: Stack) -> tuple[uuid.UUID, str, dict[str, str], str]:
    """A processing generation whose own webhooks are all dropped (so only ours arrive)."""
    await stack.faults(webhook_drop_rate=1.0, duration_s=0.05)
    user, headers = await stack.user(credits=100)
    created = (await stack.submit(headers)).json()
    await stack.settle(created["id"])
    return user, created["id"], headers, await stack.job_id(created["id"])


def prediction(job: str, status: str, **extra: object) -> bytes:
    body = {"id": job, "status": status, "logs": "", "output": None, "error": None, **extra}
    return json.dumps(body).encode()


async def deliver(
    stack: Stack, generation_id: str, body: bytes, headers: dict[str, str] | None = None
) -> int:
    """POST a Replicate webhook for one generation: signed now with the stack's secret, unless
    `headers` are given. The answer's status."""
    if headers is None:
        headers = signed(stack.secrets.webhook_secret, body)
    response = await stack.api.post(
        URL, params={"generation_id": generation_id}, content=body, headers=headers
    )
    return response.status_code


def signed(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Standard Webhooks headers for `body`, with a fresh message id."""
    now = int(time.time()) if timestamp is None else timestamp
    return signed_headers(secret, f"msg_{uuid.uuid4().hex}", now, body)


@both_configs
async def test_signed_completion_is_applied(stack: Stack) -> None:
    user, gen_id, headers, job = await running_generation(stack)
    body = prediction(job, "succeeded", output="https://replicate.delivery/x/out.mp4")
    assert await deliver(stack, gen_id, body) == 200
    status = (await stack.status(gen_id, headers)).json()
    assert status["status"] == "completed"
    assert status["video_url"] == "https://replicate.delivery/x/out.mp4"
    assert await balance(stack.admin, user) == 90


@pytest.mark.parametrize(
    "attack",
    ["tampered body", "other secret", "old timestamp", "future timestamp", "no headers",
     "garbage headers", "unsigned"],
)  # fmt: skip
async def test_forged_webhooks_are_401_and_change_nothing(stack: Stack, attack: str) -> None:
    user, gen_id, headers, job = await running_generation(stack)
    body = prediction(job, "failed", error="forged")
    secret, now = stack.secrets.webhook_secret, int(time.time())
    good = signed(secret, body)
    cases: dict[str, tuple[bytes, dict[str, str]]] = {
        "tampered body": (body.replace(b"failed", b"canceled"), good),
        "other secret": (body, signed("whsec_" + "QUJD" * 8, body)),
        "old timestamp": (body, signed(secret, body, now - 600)),
        "future timestamp": (body, signed(secret, body, now + 600)),
        "no headers": (body, {}),
        "garbage headers": (
            body,
            {"webhook-id": "x", "webhook-timestamp": "soon", "webhook-signature": "??"},
        ),
        "unsigned": (body, {**good, "webhook-signature": "v1,"}),
    }
    sent, headers_sent = cases[attack]
    assert await deliver(stack, gen_id, sent, headers_sent) == 401
    assert (await stack.status(gen_id, headers)).json()["status"] == "processing"
    assert await balance(stack.admin, user) == 90


async def test_duplicate_failure_webhooks_refund_once(stack: Stack) -> None:
    user, gen_id, _, job = await running_generation(stack)
    body = prediction(job, "failed", error="out of memory")
    codes = [await deliver(stack, gen_id, body) for _ in range(5)]
    assert codes == [200] * 5
    assert await balance(stack.admin, user) == 100
    assert await ledger_types(stack.admin, uuid.UUID(gen_id)) == ["deduction", "refund"]


async def test_late_processing_webhook_after_completion_changes_nothing(stack: Stack) -> None:
    _, gen_id, headers, job = await running_generation(stack)
    done = prediction(job, "succeeded", output="https://replicate.delivery/x/out.mp4")
    assert await deliver(stack, gen_id, done) == 200
    late = prediction(job, "processing", logs=" 10%|#         | 2/20 [00:01<00:09, 2.0it/s]")
    assert await deliver(stack, gen_id, late) == 200
    status = (await stack.status(gen_id, headers)).json()
    assert (status["status"], status["progress"]) == ("completed", 100)


async def test_webhook_with_a_long_log_is_accepted(stack: Stack) -> None:
    user, gen_id, headers, job = await running_generation(stack)
    line = " 50%|#####     | 10/20 [00:05<00:05,  2.0it/s]\n"
    body = prediction(job, "processing", logs=line * 3000)  # about 150 KB
    assert len(body) > 64 * 1024
    assert await deliver(stack, gen_id, body) == 200
    assert (await stack.status(gen_id, headers)).json()["progress"] == 50
    assert await balance(stack.admin, user) == 90


async def test_a_webhook_over_its_size_limit_is_413_declared_or_streamed(stack: Stack) -> None:
    """MAX_WEBHOOK_BYTES holds whether the body declares its length or streams in chunks
    (counted as it arrives), and the answer has our error shape; nothing is applied."""
    user, gen_id, headers, job = await running_generation(stack)
    body = prediction(job, "failed", logs="x" * (1024 * 1024 + 1))  # the 1 MB default
    signed_now = signed(stack.secrets.webhook_secret, body)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    for content in (body, chunks()):
        response = await stack.api.post(
            URL, params={"generation_id": gen_id}, content=content, headers=signed_now
        )
        assert response.status_code == 413
        assert response.json()["code"] == "payload_too_large"
    assert (await stack.status(gen_id, headers)).json()["status"] == "processing"
    assert await balance(stack.admin, user) == 90


async def test_unknown_generation_is_acknowledged(stack: Stack) -> None:
    body = prediction("job-unknown", "succeeded", output="https://x.test/v.mp4")
    assert await deliver(stack, str(uuid.uuid4()), body) == 200
    assert await deliver(stack, "not-a-uuid", body) == 200


async def test_signed_garbage_payload_is_422(stack: Stack) -> None:
    assert await deliver(stack, str(uuid.uuid4()), b'{"hello": "world"}') == 422


async def test_aborted_prediction_fails_and_refunds(stack: Stack) -> None:
    user, gen_id, headers, job = await running_generation(stack)
    assert await deliver(stack, gen_id, prediction(job, "aborted")) == 200
    status = (await stack.status(gen_id, headers)).json()
    assert status["status"] == "failed"
    assert await balance(stack.admin, user) == 100


@both_configs
async def test_duplicated_and_reordered_deliveries_leave_one_outcome(stack: Stack) -> None:
    await stack.faults(webhook_duplicate_rate=1.0, webhook_reorder=True, duration_s=0.3)
    user, headers = await stack.user(credits=100)
    ids = [(await stack.submit(headers)).json()["id"] for _ in range(3)]
    for gen_id in ids:
        await stack.settle(gen_id)
        status = (await stack.status(gen_id, headers)).json()
        assert (status["status"], status["progress"]) == ("completed", 100)
    assert await balance(stack.admin, user) == 70


async def test_failing_predictions_with_duplicates_refund_once(stack: Stack) -> None:
    await stack.faults(fail_rate=1.0, webhook_duplicate_rate=1.0, duration_s=0.2)
    user, headers = await stack.user(credits=100)
    ids = [(await stack.submit(headers)).json()["id"] for _ in range(3)]
    for gen_id in ids:
        await stack.settle(gen_id)
        assert (await stack.status(gen_id, headers)).json()["status"] == "failed"
    assert await balance(stack.admin, user) == 100


async def test_answers_say_what_was_applied_and_ticks_log_at_debug(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    _, gen_id, _, job = await running_generation(stack)

    async def post(body: bytes, generation_id: str = gen_id) -> object:
        signed = signed_headers(
            stack.secrets.webhook_secret, f"msg_{uuid.uuid4().hex}", int(time.time()), body
        )
        response = await stack.api.post(
            URL, params={"generation_id": generation_id}, content=body, headers=signed
        )
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        return response.json()

    tick = prediction(job, "processing", logs=" 50%|#####     | 10/20 [00:05<00:05, 2.0it/s]")
    done = prediction(job, "succeeded", output="https://replicate.delivery/x/out.mp4")
    with caplog.at_level("DEBUG", logger="functions.webhook"):
        assert await post(tick) == {"ok": True, "applied": True, "status": "processing"}
        assert await post(done) == {"ok": True, "applied": True, "status": "completed"}
        assert await post(done) == {"ok": True, "applied": False, "status": "completed"}
        unknown = await post(done, str(uuid.uuid4()))
        assert unknown == {"ok": True, "applied": False, "status": None}
    levels = [
        (r.levelname, r.getMessage().split(" (")[0])
        for r in caplog.records
        if r.name == "functions.webhook"
    ]
    assert levels == [
        ("DEBUG", "webhook processing -> processing"),
        ("INFO", "webhook succeeded -> completed"),
        ("INFO", "webhook succeeded -> completed"),
        ("WARNING", "webhook for unknown generation"),
    ]


@both_configs
async def test_concurrent_webhooks_each_apply_once(stack: Stack) -> None:
    await stack.faults(webhook_drop_rate=1.0, duration_s=0.05)
    user, headers = await stack.user(credits=100)
    ids = [(await stack.submit(headers)).json()["id"] for _ in range(3)]
    for gen_id in ids:
        await stack.settle(gen_id)
    jobs = [await stack.job_id(gen_id) for gen_id in ids]
    bodies = [
        (gen_id, prediction(job, status, error="oom" if status == "failed" else None))
        for gen_id, job in zip(ids, jobs, strict=True)
        for status in ("processing", "failed", "failed", "failed")
    ]
    codes = await asyncio.gather(*(deliver(stack, gen_id, body) for gen_id, body in bodies))
    assert codes == [200] * len(bodies)
    for gen_id in ids:
        assert (await stack.status(gen_id, headers)).json()["status"] == "failed"
        assert await ledger_types(stack.admin, uuid.UUID(gen_id)) == ["deduction", "refund"]
    assert await balance(stack.admin, user) == 100


@pytest.mark.parametrize("fault", ["raises", "hangs"])
async def test_a_copy_that_cannot_be_started_still_acks_and_the_sweep_finds_it(
    stack: Stack, settings: Settings, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    # On Modal the copy is spawned; a spawn that fails or hangs comes after the update was
    # applied, so the delivery is still answered 200 (a retry would change nothing and start
    # nothing) and the completed video waits for the sweep's copy.
    monkeypatch.setattr(webhook, "SCHEDULE_TIMEOUT_S", 0.05)
    tried: list[uuid.UUID] = []
    given_up: list[bool] = []

    async def spawn(gen: Generation) -> None:
        tried.append(gen.id)
        if fault == "raises":
            raise RuntimeError("the spawn API is down")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            given_up.append(True)
            raise

    _, gen_id, _, job = await running_generation(stack)
    app = webhook.create_app(settings, schedule_copy=spawn)
    body = prediction(job, "succeeded", output="https://replicate.delivery/x/out.mp4")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            async with asyncio.timeout(30):  # not bounded by the webhook: fail, do not hang
                response = await client.post(
                    URL,
                    params={"generation_id": gen_id},
                    content=body,
                    headers=signed(stack.secrets.webhook_secret, body),
                )
    rpc = Rpc(await open_transport(settings))
    try:
        pending = await rpc.claim_pending_copies(
            limit=10, retry_after_s=0, max_age_s=3600, max_attempts=5, lease_s=60
        )
    finally:
        await rpc.aclose()
    assert response.status_code == 200
    assert response.json()["status"] == "completed"
    assert tried == [uuid.UUID(gen_id)]
    assert given_up == ([True] if fault == "hangs" else [])
    assert uuid.UUID(gen_id) in [g.id for g in pending]
