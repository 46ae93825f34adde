"""A seeded random walk through everything that can happen at once: submits, webhooks that are
dropped, duplicated or reordered, failures, sweeps, cancels and crashes. After every step the
ledger invariants hold and no terminal generation has changed; at the end, after the provider
settles and a few sweeps, every generation is terminal. A failing seed replays exactly the same
walk (the emulator's dice are seeded too; only thread timing differs)."""

from __future__ import annotations

import contextlib
import random
import uuid
from dataclasses import replace

import pytest

from shared.core.errors import AppError
from shared.flows.lifecycle import Lifecycle, SubmitRequest
from shared.wiring import SweepServices
from tests.functions.conftest import Stack
from tests.functions.test_reconcile import (
    Crash,
    CrashAfterCreate,
    CrashAfterReservation,
    heal,
    live,
    reconciler,
)
from tests.support import assert_ledger_invariants, create_user

STEPS = 30
PROMPTS = ["a koi pond in autumn rain", "neon signs flicker in the alley", "waves fold at dusk"]


async def terminal_statuses(stack: Stack) -> dict[uuid.UUID, str]:
    cur = await stack.admin.execute(
        "select id, status from public.generations"
        " where status in ('completed', 'failed', 'canceled')"
    )
    return {row[0]: str(row[1]) for row in await cur.fetchall()}  # type: ignore[misc]


@pytest.mark.parametrize("seed", [11, 23, 37])
async def test_random_walk_keeps_every_invariant(
    stack: Stack, services: SweepServices, seed: int
) -> None:
    rng = random.Random(seed)
    users = [await create_user(stack.admin, credits=rng.choice([30, 60, 200])) for _ in range(3)]
    crash_rpc = replace(
        services.lifecycle, rpc=CrashAfterReservation(services.lifecycle.rpc).port()
    )
    crash_provider = replace(
        services.lifecycle, provider=CrashAfterCreate(services.lifecycle.provider)
    )
    finished: dict[uuid.UUID, str] = {}
    log: list[str] = []

    async def submit(lifecycle: Lifecycle) -> None:
        request = SubmitRequest(
            user_id=rng.choice(users), kind="t2v", model="t2v-14B",
            resolution=rng.choice(["480p", "720p"]), prompt=rng.choice(PROMPTS),
            idempotency_key=rng.choice([None, None, f"key-{rng.randrange(4)}"]),
        )  # fmt: skip
        # Refusals and crashes are part of the walk; the invariants judge the result.
        with contextlib.suppress(AppError, Crash):
            await lifecycle.submit(request)

    async def random_live() -> tuple[uuid.UUID, uuid.UUID] | None:
        cur = await stack.admin.execute(
            "select user_id, id from public.generations where status in ('queued', 'processing')"
        )
        rows = await cur.fetchall()
        return rng.choice(rows) if rows else None  # type: ignore[return-value]

    for step in range(STEPS):
        action = rng.choice(
            ["submit", "submit", "submit", "crash", "faults", "sweep", "cancel", "settle"]
        )
        log.append(action)
        if action == "submit":
            await submit(services.lifecycle)
        elif action == "crash":
            await submit(rng.choice([crash_rpc, crash_provider]))
        elif action == "faults":
            await stack.faults(
                webhook_drop_rate=rng.choice([0.0, 0.5, 1.0]),
                webhook_duplicate_rate=rng.choice([0.0, 0.5]),
                webhook_reorder=rng.random() < 0.3,
                fail_rate=rng.choice([0.0, 0.2, 0.5]),
                abort_rate=rng.choice([0.0, 0.1]),
                duration_s=rng.choice([0.0, 0.05, 0.2]),
            )
        elif action == "sweep":
            await reconciler(services).sweep()
        elif action == "cancel":
            target = await random_live()
            if target is not None:
                # It may have finished in the meantime: a 409 is a fine answer.
                with contextlib.suppress(AppError):
                    await services.lifecycle.cancel(*target)
        elif action == "settle":
            target = await random_live()
            if target is not None and (job := await _job(stack, target[1])) is not None:
                await stack.emulator.get(f"/__emulator/predictions/{job}", params={"wait": 10})

        await assert_ledger_invariants(stack.admin)
        now_terminal = await terminal_statuses(stack)
        for gen_id, status in finished.items():
            assert now_terminal.get(gen_id) == status, f"seed {seed} step {step}: {log}"
        finished = now_terminal

    await stack.faults(
        webhook_drop_rate=0.0, webhook_duplicate_rate=0.0, webhook_reorder=False, duration_s=0.0
    )
    await heal(stack, services)
    assert await live(stack.admin) == 0, f"seed {seed}: {log}"
    await assert_ledger_invariants(stack.admin)
    cur = await stack.admin.execute("select status, count(*) from public.generations group by 1")
    outcomes = {str(status): n for status, n in await cur.fetchall()}
    # The walk must have exercised something, not passed by doing nothing.
    assert sum(outcomes.values()) >= 5, outcomes  # type: ignore[arg-type]


async def _job(stack: Stack, generation_id: uuid.UUID) -> str | None:
    cur = await stack.admin.execute(
        "select job_id from public.generations where id = %s", (generation_id,)
    )
    row = await cur.fetchone()
    return None if row is None or row[0] is None else str(row[0])
