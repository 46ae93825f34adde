"""One reconciliation pass: its cost must grow with the stale rows, not with the history.

    python -m bench.sweep

sweep_pass_1m_history: `Reconciler.sweep()` (claim, a provider GET at the emulator for each
row, apply_prediction, then the keeper's pending-copy pass) with STALE running generations whose
webhooks were lost (their predictions succeeded at the emulator), in a database that also holds
1,000,000 finished generations. Floor: the same pass, same STALE rows, with 1,000 finished
generations. Target: <= 2 x floor.

The history is bulk-inserted in SQL (generate_series): completed generations over the last
year across 1,000 users, with provider URLs, request hashes and (for 49 in 50) a stored copy;
the rest are copies that failed and expired. It has no deduction ledger rows, so it lives in
its own two databases, whose ledgers are not checked; the tables are vacuumed and analyzed
after the load, as autovacuum would have done long ago in production. The provider rate limit
is lifted for this figure (10,000/s) so the pass measures the database and the code, not the
limiter; the limiter has its own figure (bench.backlog).
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass

from pydantic import SecretStr

from bench.common import (
    REPEATS,
    Figure,
    Postgres,
    Stack,
    connect,
    create_users,
    emulator_predictions,
    local_stack,
    processing_generations,
    ratio_figure,
    report,
    run_alone,
)
from local.emulator_faults import Faults
from shared.core.ratelimit import RateLimiter
from shared.flows.reconcile import Reconciler, SweepConfig
from shared.wiring import sweep_job

BIG_HISTORY = 1_000_000
SMALL_HISTORY = 1_000
HISTORY_USERS = 1_000
STALE = 100

HISTORY_SQL = """
with owners as (
  select array_agg(id order by id) as ids from public.users
), history as (
  select i, gen_random_uuid() as id, owners.ids[1 + i %% cardinality(owners.ids)] as user_id,
         now() - interval '2 hours' - i * interval '30 seconds' as created
    from generate_series(1, %(n)s) as i, owners
)
insert into public.generations (
  id, user_id, kind, model, resolution, prompt, params, cost, status, progress, job_id,
  video_url, video_path, request_hash, created_at, updated_at, started_at, completed_at,
  poll_attempts, copy_attempts, copy_error
)
select id, user_id, 't2v', 't2v-14B', case when i %% 4 = 0 then '720p' else '480p' end,
       'a short film, history item ' || i, '{}'::jsonb, case when i %% 4 = 0 then 20 else 10 end,
       'completed', 100, 'hist' || md5(i::text),
       'https://replicate.delivery/xezq/' || md5(i::text) || '/output.mp4',
       case when i %% 50 = 0 then null else user_id || '/videos/' || id || '.mp4' end,
       md5('request ' || i), created, created + interval '95 seconds',
       created + interval '5 seconds', created + interval '95 seconds',
       1, case when i %% 50 = 0 then 5 else 1 end,
       case when i %% 50 = 0 then 'The provider no longer has the file.' end
  from history
"""


@dataclass
class Target:
    """One database and the reconciler that sweeps it."""

    url: str
    reconciler: Reconciler


async def _seed_history(url: str, rows: int) -> None:
    conn = await connect(url)
    try:
        await create_users(conn, HISTORY_USERS, credits=100)
        await conn.execute(HISTORY_SQL, {"n": rows})
        await conn.execute("vacuum analyze public.generations")
        await conn.execute("vacuum analyze public.users")
    finally:
        await conn.close()


async def _stale_rows(stack: Stack, url: str, count: int) -> None:
    """`count` running generations whose predictions already succeeded at the emulator and
    whose webhooks never came (created at the emulator without a webhook)."""
    jobs = await emulator_predictions(stack, count, check_each=True)
    conn = await connect(url)
    try:
        await processing_generations(conn, jobs)
    finally:
        await conn.close()


async def _open(stack: Stack, url: str, exits: AsyncExitStack) -> Target:
    settings = stack.settings.model_copy(update={"database_url": SecretStr(url)})
    services = await exits.enter_async_context(sweep_job(settings))
    reconciler = Reconciler(
        services.lifecycle,
        RateLimiter(10_000, burst=10_000),
        config=SweepConfig(stale_after_s=0, batch_size=200, concurrency=16),
        keeper=services.keeper,
    )
    return Target(url, reconciler)


async def _passes(
    stack: Stack, big_url: str, small_url: str
) -> tuple[list[tuple[float, float]], list[str]]:
    pairs: list[tuple[float, float]] = []
    wrong: list[str] = []
    async with AsyncExitStack() as exits:
        big, small = await _open(stack, big_url, exits), await _open(stack, small_url, exits)
        for warmup in (True, *([False] * REPEATS)):
            seconds: dict[str, float] = {}
            for name, target in (("small", small), ("big", big)):
                await _stale_rows(stack, target.url, STALE)
                started = time.perf_counter()
                summary = await target.reconciler.sweep()
                seconds[name] = time.perf_counter() - started
                counts = summary.counts
                if counts["claimed"] != STALE or counts["completed"] != STALE:
                    wrong.append(f"{name}: {summary.as_dict()}")
            if not warmup:
                pairs.append((seconds["big"], seconds["small"]))
    return pairs, wrong


def run(pg: Postgres) -> list[Figure]:
    started = time.perf_counter()
    with (
        pg.database("sweep_big") as big_url,
        pg.database("sweep_small") as small_url,
        local_stack(big_url, faults=Faults(duration_s=0), api=False) as stack,
    ):
        asyncio.run(_seed_history(big_url, BIG_HISTORY))
        asyncio.run(_seed_history(small_url, SMALL_HISTORY))
        seeded = time.perf_counter() - started
        pairs, wrong = asyncio.run(_passes(stack, big_url, small_url))
    figure = ratio_figure(
        "sweep_pass_1m_history",
        [(big * 1000, small * 1000) for big, small in pairs],
        raw_unit="ms",
        at_most=2.0,
        extra_ok=not wrong,
        labels=("ms_with_1m_history", "ms_with_1k_history"),
        detail={
            "stale_rows": STALE,
            "history_rows": BIG_HISTORY,
            "floor_history_rows": SMALL_HISTORY,
            "seed_seconds": round(seeded, 1),
            "wrong_passes": list(wrong[:10]),
            "note": f"{STALE} stale rows; 1,000 finished rows in the floor",
        },
    )
    return [report(figure)]


if __name__ == "__main__":
    run_alone(run)
