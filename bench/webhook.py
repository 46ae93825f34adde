"""Replicate's webhooks into the API: how many per second, and how fast each is answered.

    python -m bench.webhook

webhook_throughput: 16 concurrent senders POST signed `processing` updates (the prediction
object as Replicate sends it, logs with a tqdm progress bar) to
/api/webhooks/replicate?generation_id=...; the API verifies the signature, parses the body and
the progress, and calls apply_prediction. Every update moves a running generation forward
(progress 10, 25, ... round after round over GENERATIONS rows), so each one writes. Floor: the
same apply_prediction calls (same SQL text, service_role, 16 connections) from a bare psycopg
loop. Target: >= 0.5 x floor.

webhook_p99_latency: the same updates sent open-loop at half the median throughput just
measured (each request leaves at its scheduled time whatever the answers; its latency counts
from that time). The 99th percentile of each repeat; the median of those. Target: < 25 ms.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from bench.common import (
    CONCURRENCY,
    PROMPT,
    REPEATS,
    DictConn,
    Figure,
    Stack,
    connect,
    processing_generations,
    quiet_group,
    run_alone,
)
from bench.loadgen import render, run_load
from bench.open_loop import open_loop_latency
from bench.throughput import ApiThroughput, bare_loop
from local.emulator_prediction import progress_line
from local.stack import WEBHOOK_PATH
from shared.web.signatures import signed_headers

GENERATIONS = 400  # running generations per repeat and side
LEVELS = (10, 25, 40, 55, 70)  # progress of each round of updates
LATENCY_SECONDS = 4.0  # of open-loop traffic per repeat
TARGET_P99_MS = 25.0
WARMUP = 200
TOTAL_STEPS = 20

APPLY_SQL = (
    "select * from public.apply_prediction(p_generation_id => %(p_generation_id)s, "
    "p_status => %(p_status)s, p_job_id => %(p_job_id)s, p_progress => %(p_progress)s, "
    "p_video_url => %(p_video_url)s, p_error => %(p_error)s, p_source => %(p_source)s, "
    "p_predict_time => %(p_predict_time)s)"
)

Update = tuple[uuid.UUID, str, int]  # generation, job id, progress


def _payload(stack: Stack, generation_id: uuid.UUID, job_id: str, progress: int) -> bytes:
    """The prediction object as Replicate posts it while a prediction runs."""
    created = datetime.now(UTC) - timedelta(seconds=30)
    steps = TOTAL_STEPS * progress // 100
    logs = "Using seed: 4242\nLoading pipeline...\n"
    logs += "".join(progress_line(s, TOTAL_STEPS, 1.5 * s) + "\n" for s in range(1, steps + 1))
    url = f"https://api.replicate.com/v1/predictions/{job_id}"
    return json.dumps(
        {
            "id": job_id,
            "model": "wavespeedai/wan-2.1-t2v-480p",
            "version": "hidden",
            "input": {"prompt": PROMPT},
            "logs": logs,
            "output": None,
            "error": None,
            "status": "processing",
            "created_at": created.isoformat().replace("+00:00", "Z"),
            "started_at": (created + timedelta(seconds=4)).isoformat().replace("+00:00", "Z"),
            "completed_at": None,
            "urls": {"get": url, "cancel": f"{url}/cancel"},
            "metrics": {},
            "data_removed": False,
            "webhook": f"{stack.settings.public_webhook_url}?generation_id={generation_id}",
            "webhook_events_filter": ["completed", "logs", "start"],
        }
    ).encode()


def _updates(gens: Sequence[tuple[uuid.UUID, str]], levels: Sequence[int]) -> list[Update]:
    """Round after round: every generation moves to the round's progress."""
    return [(gen, job, level) for level in levels for gen, job in gens]


def _requests(stack: Stack, updates: Sequence[Update]) -> list[bytes]:
    secret = stack.secrets.webhook_secret
    out = []
    for gen, job, progress in updates:
        body = _payload(stack, gen, job, progress)
        headers = signed_headers(secret, f"msg_{secrets.token_hex(12)}", int(time.time()), body)
        headers["content-type"] = "application/json"
        out.append(
            render(
                stack.api_url,
                "POST",
                f"{WEBHOOK_PATH}?generation_id={gen}",
                headers=headers,
                body=body,
            )
        )
    return out


async def _running(url: str, count: int) -> list[tuple[uuid.UUID, str]]:
    conn = await connect(url)
    try:
        jobs = [secrets.token_hex(13) for _ in range(count)]
        gens = await processing_generations(conn, jobs)
        return list(zip(gens, jobs, strict=True))
    finally:
        await conn.close()


async def _bare_apply(url: str, updates: Sequence[Update]) -> float:
    """apply_prediction for each update, CONCURRENCY connections; updates per second."""

    async def apply(conn: DictConn, update: Update) -> None:
        gen, job, progress = update
        cur = await conn.execute(
            APPLY_SQL,
            {
                "p_generation_id": gen,
                "p_status": "processing",
                "p_job_id": job,
                "p_progress": progress,
                "p_video_url": None,
                "p_error": None,
                "p_source": "webhook",
                "p_predict_time": None,
            },
        )
        await cur.fetchall()

    return await bare_loop(url, updates, apply)


def throughput(stack: Stack) -> Figure:
    url = stack.database_url
    warm = asyncio.run(_running(url, WARMUP // 2))
    run_load(stack.api_url, _requests(stack, _updates(warm, (5,))), concurrency=CONCURRENCY)
    asyncio.run(_bare_apply(url, _updates(warm, (6,))))

    measured = ApiThroughput(stack, expected=200)
    unapplied = 0
    for _ in range(REPEATS):
        floor_gens = asyncio.run(_running(url, GENERATIONS))
        floor = asyncio.run(_bare_apply(url, _updates(floor_gens, LEVELS)))
        gens = asyncio.run(_running(url, GENERATIONS))
        measured.add(_requests(stack, _updates(gens, LEVELS)), floor)
        unapplied += asyncio.run(_not_at(url, [g for g, _ in gens], LEVELS[-1]))
    return measured.figure(
        "webhook_throughput",
        noun="webhook",
        at_least=0.5,
        clients="senders",
        extra_ok=unapplied == 0,
        detail={"generations_not_at_final_progress": unapplied},
    )


async def _not_at(url: str, gens: Sequence[uuid.UUID], progress: int) -> int:
    """How many of `gens` did not end running at `progress` (every update must apply)."""
    conn = await connect(url)
    try:
        cur = await conn.execute(
            "select count(*) as n from public.generations where id = any(%s)"
            " and (status <> 'processing' or progress <> %s)",
            (list(gens), progress),
        )
        row = await cur.fetchone()
        return 0 if row is None else int(row["n"])
    finally:
        await conn.close()


def latency(stack: Stack, max_throughput: float) -> Figure:
    url = stack.database_url
    rate = max_throughput / 2
    count = int(rate * LATENCY_SECONDS)

    def requests() -> list[bytes]:
        # Fresh generations each repeat: a progress level already applied changes nothing.
        gens = asyncio.run(_running(url, max(1, count // len(LEVELS))))
        return _requests(stack, _updates(gens, LEVELS))[:count]

    return open_loop_latency(
        stack,
        "webhook_p99_latency",
        rate=rate,
        count=count,
        target_ms=TARGET_P99_MS,
        requests=requests,
    )


def figures(stack: Stack) -> list[Figure]:
    first = throughput(stack)
    assert first.measured is not None
    return [first, latency(stack, first.measured)]


run = quiet_group("webhook", figures)


if __name__ == "__main__":
    run_alone(run)
