"""Self-healing: lost webhooks, dead processes and hung predictions end terminal, paid once."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from typing import Any

import pytest

from shared.core.catalog import Offering
from shared.core.domain import Generation
from shared.core.errors import JsonValue
from shared.db.rpc import Created
from shared.flows.lifecycle import Lifecycle, SubmitRequest
from shared.flows.reconcile import Reconciler, SweepConfig, SweepSummary
from shared.provider.replicate import Prediction, Provider
from shared.wiring import SweepServices
from tests.fakes import DatabaseProxy
from tests.functions.conftest import Stack, both_configs
from tests.support import AdminConn, assert_ledger_invariants, balance, create_user

NOW = SweepConfig(stale_after_s=0, queued_grace_s=0, batch_size=50, concurrency=8)


class Crash(BaseException):
    """The process dies here: nothing after this line runs, no except clause catches it."""


class CrashAfterReservation(DatabaseProxy):
    """The real database reserves the credits, then the process dies before the provider."""

    async def create_generation(self, *args: Any, **kwargs: Any) -> Created:
        await self.inner.create_generation(*args, **kwargs)
        raise Crash


class CrashAfterCreate:
    """A provider whose create reaches Replicate, then the process dies before mark_submitted."""

    def __init__(self, inner: Provider) -> None:
        self.inner = inner

    async def create(
        self, offering: Offering, model_input: dict[str, JsonValue], webhook_url: str
    ) -> Prediction:
        await self.inner.create(offering, model_input, webhook_url)
        raise Crash

    async def get(self, job_id: str) -> Prediction:
        return await self.inner.get(job_id)

    async def cancel(self, job_id: str) -> Prediction:
        return await self.inner.cancel(job_id)

    async def aclose(self) -> None:
        await self.inner.aclose()


def request(user: uuid.UUID) -> SubmitRequest:
    return SubmitRequest(
        user_id=user, kind="t2v", model="t2v-14B", resolution="480p",
        prompt="lanterns floating over a dark lake",
    )  # fmt: skip


def reconciler(services: SweepServices, config: SweepConfig = NOW) -> Reconciler:
    return Reconciler(
        services.lifecycle, services.reconciler.limiter, config=config, keeper=services.keeper
    )


async def live(admin: AdminConn) -> int:
    cur = await admin.execute(
        "select count(*) from public.generations where status in ('queued', 'processing')"
    )
    row = await cur.fetchone()
    assert row is not None
    count = row[0]
    assert isinstance(count, int)
    return count


async def settle_all(stack: Stack) -> None:
    cur = await stack.admin.execute("select id from public.generations where job_id is not null")
    for (gen_id,) in await cur.fetchall():
        await stack.settle(str(gen_id))


async def submitted(
    stack: Stack, count: int = 1, **faults: object
) -> tuple[uuid.UUID, dict[str, str], list[str]]:
    """With these emulator faults, a user with 100 credits submits `count` generations."""
    await stack.faults(**faults)
    user, headers = await stack.user(credits=100)
    ids = [(await stack.submit(headers)).json()["id"] for _ in range(count)]
    return user, headers, ids


async def heal(stack: Stack, services: SweepServices, config: SweepConfig = NOW) -> SweepSummary:
    """Let every prediction finish, then sweep until nothing is live (bounded)."""
    await settle_all(stack)
    summary = SweepSummary()
    for _ in range(5):
        summary = await reconciler(services, config).sweep()
        if await live(stack.admin) == 0:
            break
    return summary


@both_configs
async def test_every_webhook_dropped_still_completes_after_sweeps(
    stack: Stack, services: SweepServices
) -> None:
    user, headers, ids = await submitted(stack, 3, webhook_drop_rate=1.0, duration_s=0.1)
    summary = await heal(stack, services)
    for gen_id in ids:
        assert (await stack.status(gen_id, headers)).json()["status"] == "completed"
    assert summary.counts["completed"] + summary.counts["unchanged"] >= 1
    assert await balance(stack.admin, user) == 70


async def test_every_prediction_failing_refunds_each_once(
    stack: Stack, services: SweepServices
) -> None:
    user, headers, ids = await submitted(
        stack, 3, fail_rate=1.0, webhook_drop_rate=1.0, duration_s=0.05
    )
    await heal(stack, services)
    statuses = {(await stack.status(i, headers)).json()["status"] for i in ids}
    assert statuses == {"failed"}
    assert await balance(stack.admin, user) == 100


async def test_aborted_prediction_is_failed_and_refunded(
    stack: Stack, services: SweepServices
) -> None:
    user, headers, [gen_id] = await submitted(
        stack, abort_rate=1.0, webhook_drop_rate=1.0, duration_s=0.05
    )
    await heal(stack, services)
    body = (await stack.status(gen_id, headers)).json()
    assert body["status"] == "failed"
    assert "deadline" in body["error_message"]
    assert await balance(stack.admin, user) == 100


async def test_prediction_past_the_run_limit_is_canceled_and_refunded(
    stack: Stack, services: SweepServices
) -> None:
    user, headers, [gen_id] = await submitted(stack, webhook_drop_rate=1.0, duration_s=60.0)
    await stack.admin.execute(
        "update public.generations set created_at = now() - interval '2 hours' where id = %s",
        (uuid.UUID(gen_id),),
    )
    summary = await reconciler(services).sweep()
    assert summary.counts["timed_out"] == 1
    body = (await stack.status(gen_id, headers)).json()
    assert body["status"] == "failed"
    assert body["error_message"].startswith("Timed out")
    prediction = await stack.emulator.get(f"/__emulator/predictions/{await stack.job_id(gen_id)}")
    assert prediction.json()["prediction"]["status"] == "canceled"
    assert await balance(stack.admin, user) == 100


@both_configs
async def test_two_sweeps_at_once_never_double_apply(stack: Stack, services: SweepServices) -> None:
    await stack.faults(webhook_drop_rate=1.0, fail_rate=0.5, duration_s=0.05)
    _, headers = await stack.user(credits=1000)
    for _ in range(3):
        await stack.submit(headers)
    await settle_all(stack)
    await stack.admin.execute(
        "update public.generations set updated_at = now() - interval '10 minutes'"
    )
    overlapping = replace(NOW, stale_after_s=60)
    first, second = await asyncio.gather(
        reconciler(services, overlapping).sweep(), reconciler(services, overlapping).sweep()
    )
    assert first.counts["claimed"] + second.counts["claimed"] == 3
    assert await live(stack.admin) == 0
    await assert_ledger_invariants(stack.admin)


async def test_queued_row_inside_its_grace_period_is_left_alone(
    stack: Stack, services: SweepServices
) -> None:
    user = await create_user(stack.admin, credits=100)
    crashing = replace(services.lifecycle, rpc=CrashAfterReservation(services.lifecycle.rpc).port())
    with pytest.raises(Crash):
        await crashing.submit(request(user))
    patient = replace(NOW, queued_grace_s=3600)
    summary = await reconciler(services, patient).sweep()
    assert summary.counts["waiting"] == 1
    assert await live(stack.admin) == 1


@both_configs
@pytest.mark.parametrize("drop_webhooks", [False, True])
@pytest.mark.parametrize("where", ["after reservation", "after provider create"])
async def test_crash_at_each_submit_step_heals(
    stack: Stack, services: SweepServices, where: str, drop_webhooks: bool
) -> None:
    await stack.faults(webhook_drop_rate=1.0 if drop_webhooks else 0.0, duration_s=0.05)
    user = await create_user(stack.admin, credits=100)
    lifecycle: Lifecycle = services.lifecycle
    if where == "after reservation":
        lifecycle = replace(lifecycle, rpc=CrashAfterReservation(services.lifecycle.rpc).port())
    else:
        lifecycle = replace(lifecycle, provider=CrashAfterCreate(services.lifecycle.provider))
    for _ in range(2):
        with pytest.raises(Crash):
            await lifecycle.submit(request(user))
    emulated = (await stack.emulator.get("/__emulator/predictions")).json()
    for record in emulated:
        job = record["prediction"]["id"]
        await stack.emulator.get(f"/__emulator/predictions/{job}", params={"wait": 10})
    await heal(stack, services)
    assert await live(stack.admin) == 0
    cur = await stack.admin.execute("select status from public.generations")
    statuses = sorted(str(r[0]) for r in await cur.fetchall())
    if where == "after provider create" and not drop_webhooks:
        assert statuses == ["completed", "completed"]  # the webhooks adopted the predictions
        assert await balance(stack.admin, user) == 80
    else:
        assert statuses == ["failed", "failed"]
        assert await balance(stack.admin, user) == 100


@both_configs
async def test_status_poll_is_claimed_once_by_many_tabs(stack: Stack) -> None:
    _, headers, [gen_id] = await submitted(stack, webhook_drop_rate=1.0, duration_s=0.05)
    await stack.settle(gen_id)
    await stack.admin.execute(
        "update public.generations set updated_at = now() - interval '10 minutes' where id = %s",
        (uuid.UUID(gen_id),),
    )
    answers = await asyncio.gather(*(stack.status(gen_id, headers) for _ in range(10)))
    assert {a.status_code for a in answers} == {200}
    assert "completed" in {a.json()["status"] for a in answers}
    cur = await stack.admin.execute(
        "select poll_attempts, status from public.generations where id = %s", (uuid.UUID(gen_id),)
    )
    assert await cur.fetchone() == (1, "completed")


@pytest.mark.parametrize("read_batch", [None, (64, 1)], ids=["one-by-one", "batched"])
async def test_status_poll_stops_at_the_cap(
    stack: Stack, services: SweepServices, read_batch: tuple[int, int] | None
) -> None:
    """The lifecycle's own limits hold, batched reads included: a copy with other limits builds
    its read batcher from them."""
    user, _, [submitted_id] = await submitted(stack, webhook_drop_rate=1.0, duration_s=600)
    gen_id = uuid.UUID(submitted_id)
    capped = replace(services.lifecycle, poll_after_s=0, max_polls=2, read_batch=read_batch)
    for _ in range(5):
        gen: Generation = await capped.read(user, gen_id)
        assert gen.status == "processing"
    cur = await stack.admin.execute(
        "select poll_attempts from public.generations where id = %s", (gen_id,)
    )
    assert await cur.fetchone() == (2,)


@both_configs
async def test_sweep_keeps_videos_whose_webhooks_were_lost(
    stack: Stack, services: SweepServices
) -> None:
    # Over 6 MB: Supabase Storage takes it by TUS in chunks (production's configuration).
    user, headers, [gen_id] = await submitted(
        stack, webhook_drop_rate=1.0, duration_s=0.05, output_size_bytes=7_000_000
    )
    summary = await heal(stack, services)
    assert summary.counts["copies_kept"] == 1
    cur = await stack.admin.execute(
        "select video_path from public.generations where id = %s", (uuid.UUID(gen_id),)
    )
    assert await cur.fetchone() == (f"{user}/videos/{gen_id}.mp4",)
    link = (await stack.status(gen_id, headers)).json()["video_url"]
    assert link.startswith(stack.stored_links), link
    video = await stack.api.get(link)
    assert len(video.content) == 7_000_000


async def test_vanished_output_is_recorded_and_not_retried(
    stack: Stack, services: SweepServices
) -> None:
    _, _, [gen_id] = await submitted(stack, webhook_drop_rate=1.0, duration_s=0.05)
    await settle_all(stack)
    await stack.emulator.post("/__emulator/reset")  # the provider deleted the output
    gen = await services.lifecycle.apply_update(
        uuid.UUID(gen_id),
        Prediction(id=await stack.job_id(gen_id), status="succeeded",
                   output=f"{stack.emulator.base_url}/files/gone.mp4"),
        source="poll",
    )  # fmt: skip
    assert not await services.keeper.keep(gen.generation)
    cur = await stack.admin.execute(
        "select copy_error is not null, video_path from public.generations where id = %s",
        (uuid.UUID(gen_id),),
    )
    assert await cur.fetchone() == (True, None)
    again = await services.keeper.retry_pending()
    assert again == {"copies_kept": 0, "copies_failed": 0}


async def test_malformed_output_url_is_a_clean_copy_failure(
    stack: Stack, services: SweepServices
) -> None:
    _, _, [gen_id] = await submitted(stack, webhook_drop_rate=1.0, duration_s=0.05)
    await settle_all(stack)
    applied = await services.lifecycle.apply_update(
        uuid.UUID(gen_id),
        Prediction(id=await stack.job_id(gen_id), status="succeeded",
                   output="http://127.0.0.1:99999999/x.mp4"),
        source="poll",
    )  # fmt: skip
    assert not await services.keeper.keep(applied.generation)
