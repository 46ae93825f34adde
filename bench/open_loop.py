"""The open-loop p99 latency figure the status-read and webhook benchmarks share."""

from __future__ import annotations

from collections.abc import Callable

from bench.common import CONCURRENCY, REPEATS, Figure, Stack, median, percentile
from bench.loadgen import run_load


def open_loop_latency(
    stack: Stack,
    name: str,
    *,
    rate: float,
    count: int,
    target_ms: float,
    requests: Callable[[], list[bytes]],
) -> Figure:
    """REPEATS runs of `requests()` (built afresh per repeat: some are spent by their first
    delivery) sent open-loop at `rate`; the median of each repeat's 99th percentile."""
    p99s: list[float] = []
    p50s: list[float] = []
    errors = 0
    for _ in range(REPEATS):
        result = run_load(stack.api_url, requests(), concurrency=CONCURRENCY, rate=rate)
        errors += len(result.statuses) - result.count(200)
        p99s.append(percentile(result.latencies_s, 99) * 1000)
        p50s.append(percentile(result.latencies_s, 50) * 1000)
    value = median(p99s)
    return Figure(
        name=name,
        value=value,
        unit="ms",
        target=f"< {target_ms:g} ms",
        passed=value < target_ms and errors == 0,
        repeats=[{"p99_ms": a, "p50_ms": b} for a, b in zip(p99s, p50s, strict=True)],
        detail={
            "rate_per_s": round(rate, 1),
            "requests_per_repeat": count,
            "p50_ms": round(median(p50s), 2),
            "non_200_answers": errors,
            "note": f"open loop at {rate:.0f}/s, p50 {median(p50s):.1f} ms",
        },
    )
