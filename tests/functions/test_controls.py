"""The owner's controls over HTTP: cancel, retry, history, credits, and the active cap."""

from __future__ import annotations

import uuid

from tests.functions.conftest import Stack
from tests.support import balance, ledger_types


async def test_cancel_of_a_running_generation_refunds_once(stack: Stack) -> None:
    await stack.faults(duration_s=600)
    user, headers = await stack.user(credits=100)
    gen_id = (await stack.submit(headers)).json()["id"]
    response = await stack.api.post(f"/api/generation/{gen_id}/cancel", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "canceled"
    assert await balance(stack.admin, user) == 100
    await stack.settle(gen_id)  # the cancel webhook arrives too; nothing changes
    again = await stack.api.post(f"/api/generation/{gen_id}/cancel", headers=headers)
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_transition"
    assert await ledger_types(stack.admin, uuid.UUID(gen_id)) == ["deduction", "refund"]


async def test_cancel_while_the_provider_is_down_still_ends_canceled(stack: Stack) -> None:
    await stack.faults(duration_s=600, webhook_drop_rate=1.0)
    user, headers = await stack.user(credits=100)
    gen_id = (await stack.submit(headers)).json()["id"]
    await stack.emulator.post("/__emulator/reset")  # the provider forgets everything
    response = await stack.api.post(f"/api/generation/{gen_id}/cancel", headers=headers)
    assert response.status_code == 200
    assert response.json()["status"] == "processing"  # requested; the sweeper finishes it
    cur = await stack.admin.execute(
        "select cancel_requested_at is not null from public.generations where id = %s",
        (uuid.UUID(gen_id),),
    )
    assert await cur.fetchone() == (True,)
    assert await balance(stack.admin, user) == 90


async def test_cancel_of_someone_elses_generation_is_404(stack: Stack) -> None:
    _, owner = await stack.user()
    _, stranger = await stack.user()
    gen_id = (await stack.submit(owner)).json()["id"]
    response = await stack.api.post(f"/api/generation/{gen_id}/cancel", headers=stranger)
    assert response.status_code == 404


async def test_retry_creates_a_new_generation_and_charges_once(stack: Stack) -> None:
    await stack.faults(fail_rate=1.0, duration_s=0.05)
    user, headers = await stack.user(credits=100)
    failed_id = (await stack.submit(headers, seed=42, aspect_ratio="9:16")).json()["id"]
    await stack.settle(failed_id)
    assert (await stack.status(failed_id, headers)).json()["status"] == "failed"
    assert await balance(stack.admin, user) == 100

    await stack.faults(fail_rate=0.0)
    keyed = {**headers, "Idempotency-Key": "retry-1"}
    retried = await stack.api.post(f"/api/generation/{failed_id}/retry", headers=keyed)
    assert retried.status_code == 201, retried.text
    new = retried.json()
    assert new["id"] != failed_id
    assert new["prompt"] == "a paper boat drifting down a rainy street"
    replay = await stack.api.post(f"/api/generation/{failed_id}/retry", headers=keyed)
    assert replay.status_code == 200
    assert replay.json()["id"] == new["id"]
    assert await balance(stack.admin, user) == 90
    cur = await stack.admin.execute(
        "select retry_of, params from public.generations where id = %s", (uuid.UUID(new["id"]),)
    )
    assert await cur.fetchone() == (uuid.UUID(failed_id), {"seed": 42, "aspect_ratio": "9:16"})


async def test_retry_of_a_completed_generation_is_409(stack: Stack) -> None:
    _, headers = await stack.user(credits=100)
    gen_id = (await stack.submit(headers)).json()["id"]
    await stack.settle(gen_id)
    response = await stack.api.post(f"/api/generation/{gen_id}/retry", headers=headers)
    assert response.status_code == 409
    assert "completed" in response.json()["detail"]


async def test_history_pages_newest_first_with_a_cursor(stack: Stack) -> None:
    await stack.faults(fail_rate=1.0, duration_s=0.0)
    _, headers = await stack.user(credits=100)
    ids = []
    for n in range(5):
        gen_id = (await stack.submit(headers, prompt=f"numbered prompt number {n}")).json()["id"]
        await stack.settle(gen_id)
        ids.append(gen_id)
    first = (await stack.api.get("/api/generation/history?limit=2", headers=headers)).json()
    assert [g["id"] for g in first["items"]] == ids[::-1][:2]
    second = (
        await stack.api.get(
            "/api/generation/history", params={"limit": 2, "cursor": first["next_cursor"]},
            headers=headers,
        )
    ).json()  # fmt: skip
    assert [g["id"] for g in second["items"]] == ids[::-1][2:4]
    bad = await stack.api.get("/api/generation/history?cursor=garbage!", headers=headers)
    assert bad.status_code == 422
    _, stranger = await stack.user()
    empty = (await stack.api.get("/api/generation/history", headers=stranger)).json()
    assert empty == {"items": [], "next_cursor": None}


async def test_credits_show_balance_flag_and_ledger(stack: Stack) -> None:
    _, headers = await stack.user(credits=25)
    await stack.submit(headers)
    body = (await stack.api.get("/api/credits", headers=headers)).json()
    assert body["balance"] == 15
    assert body["low_balance"] is True
    assert body["cheapest_cost"] == 10
    assert [t["type"] for t in body["transactions"]] == ["deduction", "adjustment", "signup_bonus"]
    assert sum(t["amount"] for t in body["transactions"]) == 15


async def test_too_many_active_is_429_with_retry_after(stack: Stack) -> None:
    await stack.faults(duration_s=600)
    user, headers = await stack.user(credits=100)
    for _ in range(3):
        assert (await stack.submit(headers)).status_code == 201
    response = await stack.submit(headers)
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0
    body = response.json()
    assert body["code"] == "too_many_active"
    assert "3 generations running" in body["detail"]
    assert body["balance"] == 70  # read in the call that refused
    assert await balance(stack.admin, user) == 70
