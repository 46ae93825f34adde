"""A large backlog reconciled against the provider's rate limit.

    python -m bench.backlog

backlog_rate: BACKLOG running generations whose webhooks were lost (their predictions already
succeeded at the emulator) are settled by one `Reconciler.sweep()` whose RateLimiter allows
RATE requests/s (burst BURST). The emulator records when each provider GET arrives (a counting
middleware, bench.server). The sweep takes BACKLOG / RATE seconds, too long to repeat five
times, so the repeats are the WINDOW consecutive GETs of it: the rate of each window is
(WINDOW - 1) / (its last arrival - its first). Floor: the limit itself. Target: >= 0.9 x the
limit, and never above it: at most RATE + BURST GETs in any 1-second window.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from bench.common import (
    Figure,
    Postgres,
    Stack,
    connect,
    emulator_predictions,
    local_stack,
    median,
    processing_generations,
    report,
    run_alone,
    violations,
)
from local.emulator_faults import Faults
from shared.core.ratelimit import RateLimiter
from shared.flows.reconcile import Reconciler, SweepConfig
from shared.wiring import sweep_job

BACKLOG = 5_000
RATE = 50.0
BURST = 5
WINDOW = 1_000


async def _backlog(stack: Stack) -> dict[str, int | float]:
    jobs = await emulator_predictions(stack, BACKLOG, check_each=False)
    conn = await connect(stack.database_url)
    try:
        await processing_generations(conn, jobs)
    finally:
        await conn.close()
    async with sweep_job(stack.settings) as services:
        reconciler = Reconciler(
            services.lifecycle,
            RateLimiter(RATE, burst=BURST),
            config=SweepConfig(stale_after_s=0, batch_size=200, max_batches=50, concurrency=16),
            keeper=None,
        )
        summary = await reconciler.sweep()
    return summary.as_dict()


def _arrivals(stack: Stack) -> list[float]:
    response = httpx.get(f"{stack.emulator_url}/__bench/gets", timeout=30)
    response.raise_for_status()
    return sorted(float(t) for t in response.json())


def max_in_window(arrivals: list[float], seconds: float = 1.0) -> int:
    """The most arrivals in any half-open window [t, t + seconds)."""
    best = start = 0
    for end, t in enumerate(arrivals):
        while arrivals[start] <= t - seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


def run(pg: Postgres) -> list[Figure]:
    faults = Faults(duration_s=0)
    with (
        pg.database("backlog") as url,
        local_stack(url, faults=faults, api=False, count_gets=True) as stack,
    ):
        started = time.perf_counter()
        summary = asyncio.run(_backlog(stack))
        arrivals = _arrivals(stack)
        bad = violations(url)
        total_s = time.perf_counter() - started
    windows = [arrivals[i : i + WINDOW] for i in range(0, len(arrivals) - WINDOW + 1, WINDOW)]
    rates = [(len(w) - 1) / (w[-1] - w[0]) for w in windows]
    peak = max_in_window(arrivals)
    value = median(rates) / RATE
    ok = (
        len(arrivals) == BACKLOG
        and summary.get("completed") == BACKLOG
        and peak <= RATE + BURST
        and bad == 0
    )
    figure = Figure(
        name="backlog_rate",
        value=value,
        unit="x limit",
        target=f">= 0.9 x limit, at most {RATE + BURST:g} GETs in any 1 s",
        passed=value >= 0.9 and ok,
        measured=median(rates),
        floor=RATE,
        raw_unit="GETs/s",
        repeats=[{"window_rate_per_s": r, "ratio": r / RATE} for r in rates],
        detail={
            "backlog": BACKLOG,
            "burst": BURST,
            "provider_gets": len(arrivals),
            "max_gets_in_1s": peak,
            "sweep": dict(summary),
            "ledger_violations": bad,
            "seconds": round(total_s, 1),
            "note": f"max {peak} GETs in any 1 s; {len(arrivals)} GETs for {BACKLOG} rows",
        },
    )
    return [report(figure)]


if __name__ == "__main__":
    run_alone(run)
