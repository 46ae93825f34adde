"""Issue 14 over HTTP: the rate limit, the provider budget, deleting a generation or an account,
retention, and the operator's numbers, against the real API, database, storage and emulator."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from shared.flows.removal import RetentionConfig
from shared.storage.local import LocalStorage
from shared.wiring import SweepServices as Services
from tests.functions.conftest import Stack
from tests.support import AdminConn, balance

BUDGET_USD = 0.5


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {
        "replicate_timeout_s": 2.0,
        "copy_retry_after_s": 0,
        "provider_daily_budget_usd": BUDGET_USD,
    }


async def ledger(admin: AdminConn, user: uuid.UUID) -> list[tuple[object, ...]]:
    cur = await admin.execute(
        "select id, amount, type, generation_id from public.credit_transactions"
        " where user_id = %s order by created_at, id",
        (user,),
    )
    return list(await cur.fetchall())


async def completed_and_kept(stack: Stack, headers: dict[str, str]) -> dict[str, object]:
    gen_id = (await stack.submit(headers)).json()["id"]
    await stack.settle(gen_id)
    body = await stack.kept(gen_id, headers)
    assert body["status"] == "completed", body
    return body


def stored(storage: LocalStorage, path: str) -> bool:
    return storage.file_path(path).is_file()


# --- the rate limit -----------------------------------------------------------------------------


async def test_burst_of_30_creates_is_cut_at_10_per_minute_and_charges_nothing_more(
    stack: Stack,
) -> None:
    await stack.faults(duration_s=600)
    user, headers = await stack.user(credits=100)
    statuses: list[int] = []
    limited = None
    for _ in range(30):
        response = await stack.submit(headers)
        statuses.append(response.status_code)
        if response.status_code == 201:
            # Cancel between creates, to stay under the active cap.
            gen_id = response.json()["id"]
            cancel = await stack.api.post(f"/api/generation/{gen_id}/cancel", headers=headers)
            assert cancel.status_code == 200, cancel.text
        elif limited is None:
            limited = response
    assert statuses == [201] * 10 + [429] * 20
    assert limited is not None
    assert limited.json()["code"] == "rate_limited"
    assert "10 generations or checkouts a minute" in limited.json()["detail"]
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert await balance(stack.admin, user) == 100  # ten charged, ten refunded, no more
    cur = await stack.admin.execute(
        "select count(*) from public.generations where user_id = %s", (user,)
    )
    assert await cur.fetchone() == (10,)

    _, other = await stack.user(credits=100)
    assert (await stack.submit(other)).status_code == 201


async def test_retry_counts_against_the_rate_limit(stack: Stack) -> None:
    await stack.faults(duration_s=600)
    user, headers = await stack.user(credits=200)
    first = (await stack.submit(headers)).json()["id"]
    await stack.api.post(f"/api/generation/{first}/cancel", headers=headers)
    await stack.admin.execute(  # nine more slots taken this minute
        "insert into private.create_slots (user_id, taken_at)"
        " select %s, now() from generate_series(1, 9)",
        (user,),
    )
    retried = await stack.api.post(f"/api/generation/{first}/retry", headers=headers)
    assert retried.status_code == 429
    assert retried.json()["code"] == "rate_limited"
    assert await balance(stack.admin, user) == 200


# --- the provider budget ------------------------------------------------------------------------


async def test_budget_reached_gives_503_until_the_spend_ages_out(stack: Stack) -> None:
    user, headers = await stack.user(credits=100)
    body = await completed_and_kept(stack, headers)
    gen_id = uuid.UUID(str(body["id"]))
    cur = await stack.admin.execute(
        "select predict_time_s > 0, provider_cost_usd > 0, finished_by"
        " from public.generations where id = %s",
        (gen_id,),
    )
    assert await cur.fetchone() == (True, True, "webhook")  # the emulator's metrics.predict_time

    await stack.admin.execute(  # this generation was expensive after all
        "update public.generations set provider_cost_usd = %s where id = %s", (BUDGET_USD, gen_id)
    )
    before = await balance(stack.admin, user)
    refused = await stack.submit(headers)
    assert refused.status_code == 503
    assert refused.json()["code"] == "budget_exhausted"
    assert int(refused.headers["Retry-After"]) > 23 * 3600
    assert await balance(stack.admin, user) == before

    await stack.admin.execute(
        "update public.generations set completed_at = now() - interval '25 hours' where id = %s",
        (gen_id,),
    )
    assert (await stack.submit(headers)).status_code == 201


# --- deleting a generation ----------------------------------------------------------------------


async def test_deleted_generation_loses_its_files_and_is_not_found(
    stack: Stack, settings_storage: LocalStorage
) -> None:
    user, headers = await stack.user(credits=100)
    body = await completed_and_kept(stack, headers)
    gen_id = str(body["id"])
    path = f"{user}/videos/{gen_id}.mp4"
    assert stored(settings_storage, path)
    books = await ledger(stack.admin, user)

    response = await stack.api.delete(f"/api/generation/{gen_id}", headers=headers)
    assert response.status_code == 204, response.text
    assert not stored(settings_storage, path)
    assert (await stack.status(gen_id, headers)).status_code == 404
    history = (await stack.api.get("/api/generation/history", headers=headers)).json()
    assert gen_id not in [item["id"] for item in history["items"]]
    assert await ledger(stack.admin, user) == books
    cur = await stack.admin.execute(
        "select prompt, video_path, video_url from public.generations where id = %s",
        (uuid.UUID(gen_id),),
    )
    assert await cur.fetchone() == ("", None, None)
    again = await stack.api.delete(f"/api/generation/{gen_id}", headers=headers)
    assert again.status_code == 404


async def test_running_generation_cannot_be_deleted(stack: Stack) -> None:
    await stack.faults(duration_s=600)
    _, headers = await stack.user(credits=100)
    gen_id = (await stack.submit(headers)).json()["id"]
    response = await stack.api.delete(f"/api/generation/{gen_id}", headers=headers)
    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"
    assert "cancel it first" in response.json()["detail"]


async def test_someone_elses_generation_cannot_be_deleted(stack: Stack) -> None:
    _, owner = await stack.user(credits=100)
    _, stranger = await stack.user(credits=100)
    gen_id = (await completed_and_kept(stack, owner))["id"]
    response = await stack.api.delete(f"/api/generation/{gen_id}", headers=stranger)
    assert response.status_code == 404
    assert (await stack.status(str(gen_id), owner)).status_code == 200


# --- deleting an account ------------------------------------------------------------------------


async def rows_mentioning(admin: AdminConn, needle: str) -> list[str]:
    """Every table row (public, private, auth) whose JSON text contains `needle`."""
    cur = await admin.execute(
        "select table_schema, table_name from information_schema.tables"
        " where table_schema in ('public', 'private', 'auth') and table_type = 'BASE TABLE'"
    )
    hits: list[str] = []
    for schema, table in await cur.fetchall():
        found = await admin.execute(
            f'select count(*) from "{schema}"."{table}" t where to_jsonb(t)::text ilike %s',
            (f"%{needle}%",),
        )
        row = await found.fetchone()
        if row is not None and row[0]:
            hits.append(f"{schema}.{table}")
    return hits


@pytest.mark.parametrize("body", [None, {}, {"confirm": False}, {"confirm": "yes"}, [True]])
async def test_account_deletion_needs_an_explicit_confirmation(stack: Stack, body: object) -> None:
    user, headers = await stack.user(credits=100)
    response = await stack.api.request("DELETE", "/api/account", json=body, headers=headers)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_input"
    assert await balance(stack.admin, user) == 100


async def test_deleted_account_leaves_no_email_prompt_or_file_and_keeps_the_ledger(
    stack: Stack, settings_storage: LocalStorage
) -> None:
    email = f"leaving-{uuid.uuid4().hex[:8]}@example.test"
    cur = await stack.admin.execute(
        "insert into auth.users (email, email_confirmed_at) values (%s, now()) returning id",
        (email,),
    )
    row = await cur.fetchone()
    assert row is not None
    assert isinstance(row[0], uuid.UUID)
    user = row[0]
    headers = stack.auth(user)
    _, bystander = await stack.user(credits=100)
    kept = await completed_and_kept(stack, headers)
    await stack.faults(duration_s=600)
    running = (await stack.submit(headers, prompt="a secret garden behind a wall")).json()["id"]
    await stack.submit(bystander)
    books = len(await ledger(stack.admin, user))
    # An upload no generation names (its create was refused) is the user's file too.
    await settings_storage.put_bytes(f"{user}/inputs/orphan.png", b"\x89PNG", "image/png")
    user_dir = Path(settings_storage.root) / str(user)
    assert any(p.is_file() for p in user_dir.rglob("*"))

    response = await stack.api.request(
        "DELETE", "/api/account", json={"confirm": True}, headers=headers
    )
    assert response.status_code == 204, response.text

    assert await rows_mentioning(stack.admin, email) == []
    assert await rows_mentioning(stack.admin, "a secret garden") == []
    cur = await stack.admin.execute(
        "select count(*) from public.generations where user_id = %s and prompt <> ''", (user,)
    )
    assert await cur.fetchone() == (0,)
    assert not any(p.is_file() for p in user_dir.rglob("*"))
    cur = await stack.admin.execute("select count(*) from auth.users where id = %s", (user,))
    assert await cur.fetchone() == (0,)
    cur = await stack.admin.execute(
        "select email, deleted_at is not null, credits from public.users where id = %s", (user,)
    )
    assert await cur.fetchone() == (None, True, 90)  # 100 - the completed one; running refunded
    assert len(await ledger(stack.admin, user)) == books + 1  # the running one's refund
    job = await stack.job_id(running)
    prediction = (await stack.emulator.get(f"/__emulator/predictions/{job}")).json()
    assert prediction["prediction"]["status"] == "canceled"
    assert (await stack.submit(bystander)).status_code == 201  # others unaffected
    assert (await stack.status(str(kept["id"]), headers)).status_code == 404


# --- retention ----------------------------------------------------------------------------------


async def test_retention_removes_old_media_in_batches_and_says_it_expired(
    stack: Stack, services: Services, settings_storage: LocalStorage
) -> None:
    user, headers = await stack.user(credits=100)
    gens = [await completed_and_kept(stack, headers) for _ in range(3)]
    old, recent = gens[:2], gens[2]
    for body in old:
        await stack.admin.execute(
            "update public.generations set completed_at = now() - interval '31 days' where id = %s",
            (uuid.UUID(str(body["id"])),),
        )
    config = RetentionConfig(retention_days=30, batch_size=1, max_batches=1)

    first = await services.remover.purge(config)
    assert first["media_released"] == 1
    paths = {str(b["id"]): f"{user}/videos/{b['id']}.mp4" for b in gens}
    assert [stored(settings_storage, paths[str(b["id"])]) for b in old].count(False) == 1
    second = await services.remover.purge(config)
    assert second["media_released"] == 1
    assert not any(stored(settings_storage, paths[str(b["id"])]) for b in old)
    assert stored(settings_storage, paths[str(recent["id"])])
    assert (await services.remover.purge(config))["media_released"] == 0

    status = (await stack.status(str(old[0]["id"]), headers)).json()
    assert (status["status"], status["media_expired"], status["video_url"]) == (
        "completed", True, None
    )  # fmt: skip
    history = (await stack.api.get("/api/generation/history", headers=headers)).json()
    expired = {item["id"]: item["media_expired"] for item in history["items"]}
    assert expired == {str(old[0]["id"]): True, str(old[1]["id"]): True, str(recent["id"]): False}


async def test_shared_input_image_stays_while_another_generation_uses_it(
    stack: Stack, services: Services, settings_storage: LocalStorage, admin: AdminConn
) -> None:
    user, headers = await stack.user(credits=100)
    first = await completed_and_kept(stack, headers)
    second = await completed_and_kept(stack, headers)
    shared = f"{user}/inputs/same.png"
    await settings_storage.put_bytes(shared, b"\x89PNG fake", "image/png")
    await admin.execute(
        "update public.generations set input_image_path = %s where id = any(%s)",
        (shared, [uuid.UUID(str(first["id"])), uuid.UUID(str(second["id"]))]),
    )
    response = await stack.api.delete(f"/api/generation/{first['id']}", headers=headers)
    assert response.status_code == 204
    assert stored(settings_storage, shared)  # the second still uses it
    response = await stack.api.delete(f"/api/generation/{second['id']}", headers=headers)
    assert response.status_code == 204
    assert not stored(settings_storage, shared)


# --- the operator's numbers ---------------------------------------------------------------------


async def test_admin_stats_are_for_admins_only(stack: Stack) -> None:
    user, headers = await stack.user(credits=100)
    await completed_and_kept(stack, headers)
    denied = await stack.api.get("/api/admin/stats", headers=headers)
    assert denied.status_code == 403
    assert denied.json()["code"] == "forbidden"

    admin_headers = {"Authorization": f"Bearer {stack.token(user, app_role='admin')}"}
    response = await stack.api.get("/api/admin/stats?since=1h", headers=admin_headers)
    assert response.status_code == 200, response.text
    stats = response.json()
    assert stats["generations"]["completed"] == 1
    assert stats["webhook_delivery_rate"]["value"] == 1
    assert stats["credit_accuracy"]["met"] is True
    assert stats["provider"]["daily_budget_usd"] == BUDGET_USD
    bad = await stack.api.get("/api/admin/stats?since=yesterday", headers=admin_headers)
    assert bad.status_code == 422


async def test_stats_of_a_scripted_run_count_how_each_outcome_arrived(
    stack: Stack, services: Services
) -> None:
    """8 completed (one webhook lost: the sweeper settles it), 2 failed, through the real paths."""
    from tests.functions.test_reconcile import reconciler

    user, headers = await stack.user(credits=200)
    plan = ["ok"] * 6 + ["fail", "fail", "lost", "ok"]
    for step in plan:
        await stack.faults(
            fail_rate=1.0 if step == "fail" else 0.0,
            webhook_drop_rate=1.0 if step == "lost" else 0.0,
            duration_s=0.05,
        )
        created = await stack.submit(headers)
        assert created.status_code == 201, created.text
        await stack.settle(created.json()["id"])
    summary = await reconciler(services).sweep()
    assert summary.counts["completed"] == 1

    admin_headers = {"Authorization": f"Bearer {stack.token(user, app_role='admin')}"}
    stats = (await stack.api.get("/api/admin/stats", headers=admin_headers)).json()
    assert stats["generations"]["finished_by"] == {
        "webhook": 9, "poll": 0, "sweep": 1, "cancel": 0, "submit": 0
    }  # fmt: skip
    assert (stats["generations"]["completed"], stats["generations"]["failed"]) == (8, 2)
    assert stats["success_rate"] == {"value": 0.8, "target": 0.95, "op": ">", "met": False}
    assert stats["webhook_delivery_rate"] == {
        "value": 0.9, "target": 0.99, "op": ">", "met": False
    }  # fmt: skip
    assert stats["p95_completion_s"]["met"] is True  # seconds, not minutes
    assert stats["credit_accuracy"]["met"] is True
    assert stats["refunds"] == {"count": 2, "credits": 20}
    assert stats["credits"]["spent"] == 80
    assert stats["provider"]["spend_usd"] > 0
    # Nothing bought (payments' figures: tests/functions/test_payments.py): margin = -spend.
    assert (stats["revenue"]["value"], stats["revenue"]["purchases"]) == (0.0, 0)
    assert stats["margin"]["value"] == pytest.approx(-stats["provider"]["spend_usd"])


async def test_the_sweep_runs_retention(
    stack: Stack, services: Services, settings_storage: LocalStorage
) -> None:
    user, headers = await stack.user(credits=100)
    body = await completed_and_kept(stack, headers)
    await stack.admin.execute(
        "update public.generations set completed_at = now() - interval '31 days' where id = %s",
        (uuid.UUID(str(body["id"])),),
    )
    summary = await services.reconciler.sweep()
    assert summary.counts["media_released"] == 1
    assert summary.counts["media_files_removed"] == 1
    assert not stored(settings_storage, f"{user}/videos/{body['id']}.mp4")
