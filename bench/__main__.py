"""Every benchmark against the local stack: one line per figure, and bench/results.json.

    python -m bench                  # all groups (make bench); writes bench/results.json
    python -m bench submit webhook   # some groups; prints only

Groups: cold_start, output_copy, submit, webhook, sweep, backlog, status_reads, history,
tus_upload, stripe_events. Each figure is a ratio to a floor measured in the same run (or an
absolute target), the median of at least 5 repeats; see each module's docstring for what is
measured and against what. The exit status is 1 when a figure misses its target.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench import (
    backlog,
    cold_start,
    history,
    status_reads,
    stripe_events,
    submit,
    sweep,
    tus_upload,
    webhook,
)
from bench.common import (
    KEEPALIVE_RTT_MS,
    REPEATS,
    Figure,
    Postgres,
    median,
    report_peak_rss,
    runs_in_fresh_processes,
)
from bench.env import setup_logging
from bench.output_copy import TARGET_RSS_MB
from shared.core.errors import JsonValue

RESULTS = Path(__file__).with_name("results.json")


def output_copy(_pg: Postgres) -> list[Figure]:
    """bench.output_copy, once per repeat, each in a fresh process."""
    runs: list[dict[str, float]] = runs_in_fresh_processes("bench.output_copy")
    peaks = [r["output_copy_peak_rss_growth_mb"] for r in runs]
    value = median(peaks)
    return [
        report_peak_rss(
            "output_copy_peak_rss_growth",
            value,
            target_mb=TARGET_RSS_MB,
            repeats=[{k.removeprefix("output_copy_"): v for k, v in r.items()} for r in runs],
            detail={
                "video_mb": 200,
                "throughput_mb_s": median([r["output_copy_throughput_mb_s"] for r in runs]),
                "tracemalloc_peak_mb": median([r["output_copy_tracemalloc_peak_mb"] for r in runs]),
                "note": "200 MB video",
            },
        )
    ]


GROUPS: dict[str, Callable[[Postgres], list[Figure]]] = {
    "cold_start": cold_start.run,
    "output_copy": output_copy,
    "submit": submit.run,
    "webhook": webhook.run,
    "sweep": sweep.run,
    "backlog": backlog.run,
    "status_reads": status_reads.run,
    "history": history.run,
    "tus_upload": tus_upload.group,
    "stripe_events": stripe_events.run,
}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _memory_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return 0.0


def _commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 (git from PATH)
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return ""
    return done.stdout.strip()


def machine(pg: Postgres) -> dict[str, JsonValue]:
    return {
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "memory_gb": _memory_gb(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgres": pg.version(),
        "commit": _commit(),
    }


def main(argv: list[str]) -> int:
    unknown = [name for name in argv if name not in GROUPS]
    if unknown:
        print(f"unknown group(s): {', '.join(unknown)}; choose from {', '.join(GROUPS)}")
        return 2
    names = argv or list(GROUPS)
    log = setup_logging()
    started = time.perf_counter()
    when = dt.datetime.now(dt.UTC)
    pg = Postgres()
    info = machine(pg)
    print(
        f"bench: {info['cpus_usable']} CPUs ({info['cpu']}), Python {info['python']}, "
        f"PostgreSQL {info['postgres']}; service logs in {log}",
        flush=True,
    )
    pg.prepare_template()
    figures: list[Figure] = []
    for name in names:
        figures += GROUPS[name](pg)
    elapsed = time.perf_counter() - started
    failed = [f.name for f in figures if not f.passed]
    print(
        f"bench: {len(figures) - len(failed)} of {len(figures)} figures met their targets "
        f"in {elapsed / 60:.1f} min" + (f"; missed: {', '.join(failed)}" if failed else ""),
        flush=True,
    )
    if not argv:
        results: dict[str, JsonValue] = {
            "date": when.isoformat(timespec="seconds"),
            "command": "make bench",
            "seconds": round(elapsed, 1),
            "repeats": REPEATS,
            "machine": info,
            "keepalive_rtt_ms": dict(KEEPALIVE_RTT_MS),
            "all_passed": not failed,
            "figures": [f.as_json() for f in figures],
        }
        tmp = RESULTS.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(results, indent=2) + "\n")
        tmp.replace(RESULTS)
        print(f"bench: wrote {RESULTS}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
