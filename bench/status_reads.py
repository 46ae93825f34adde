"""Status reads: every open tab polls GET /api/generation/status/{id}.

    python -m bench status_reads

status_read_throughput: 16 concurrent clients GET the status of running generations (each with
its owner's token), round after round over GENERATIONS rows: auth, the read (the owner check
and the poll claim, which nothing wins here: STATUS_POLL_AFTER_S is an hour, so no read asks
the provider; reads arriving together share a read_generations call, as in production), the
response model. Floor: read_generation calls, one read each (same SQL text, service_role, 16
connections) from a bare psycopg loop. Target: >= 0.6 x floor.

status_read_p99_latency: the same reads sent open-loop at half the median throughput just
measured. The 99th percentile of each repeat; the median of those. Target: < 20 ms.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Sequence

from bench.common import (
    CONCURRENCY,
    QUIET_FAULTS,
    REPEATS,
    DictConn,
    Figure,
    Postgres,
    Stack,
    connect,
    local_stack,
    processing_generations,
    report_checked,
    run_alone,
    token,
)
from bench.loadgen import render, run_load
from bench.open_loop import open_loop_latency
from bench.throughput import ApiThroughput, bare_loop

GENERATIONS = 400
# Reads of each generation per repeat: 8,000 reads, a window of about a second for the floor;
# at 2,000 the floor swung 6,400-10,300 reads/s between repeats of one run.
ROUNDS = 20
LATENCY_SECONDS = 4.0
TARGET_P99_MS = 20.0
READ_SQL = (
    "select * from public.read_generation(p_user_id => %(p_user_id)s, "
    "p_generation_id => %(p_generation_id)s, p_poll_after_s => %(p_poll_after_s)s, "
    "p_max_polls => %(p_max_polls)s)"
)

Read = tuple[uuid.UUID, uuid.UUID]  # owner, generation


async def _running(url: str, count: int) -> list[Read]:
    conn = await connect(url)
    try:
        gens = await processing_generations(conn, [secrets.token_hex(13) for _ in range(count)])
        cur = await conn.execute(
            "select id, user_id from public.generations where id = any(%s)", (gens,)
        )
        owners = {row["id"]: row["user_id"] for row in await cur.fetchall()}
        return [(owners[g], g) for g in gens]
    finally:
        await conn.close()


def _requests(stack: Stack, reads: Sequence[Read]) -> list[bytes]:
    tokens = {owner: token(stack.secrets, owner) for owner, _ in reads}
    return [
        render(
            stack.api_url,
            "GET",
            f"/api/generation/status/{gen}",
            headers={"authorization": f"Bearer {tokens[owner]}"},
        )
        for owner, gen in reads
    ]


async def _bare_reads(stack: Stack, reads: Sequence[Read]) -> float:
    """read_generation for each read, CONCURRENCY connections; reads per second."""
    settings = stack.settings

    async def read(conn: DictConn, one: Read) -> None:
        owner, gen = one
        cur = await conn.execute(
            READ_SQL,
            {
                "p_user_id": owner,
                "p_generation_id": gen,
                "p_poll_after_s": settings.status_poll_after_s,
                "p_max_polls": settings.status_max_polls,
            },
        )
        await cur.fetchall()

    return await bare_loop(stack.database_url, reads, read)


def throughput(stack: Stack, reads: Sequence[Read]) -> Figure:
    rounds = list(reads) * ROUNDS
    requests = _requests(stack, rounds)
    run_load(stack.api_url, requests[: len(reads)], concurrency=CONCURRENCY)  # warm up
    asyncio.run(_bare_reads(stack, reads))
    measured = ApiThroughput(stack, expected=200)
    for _ in range(REPEATS):
        floor = asyncio.run(_bare_reads(stack, rounds))
        measured.add(requests, floor)
    return measured.figure("status_read_throughput", noun="read", at_least=0.6)


def latency(stack: Stack, reads: Sequence[Read], max_throughput: float) -> Figure:
    rate = max_throughput / 2
    count = int(rate * LATENCY_SECONDS)
    requests = _requests(stack, (list(reads) * (count // len(reads) + 1))[:count])
    return open_loop_latency(
        stack,
        "status_read_p99_latency",
        rate=rate,
        count=count,
        target_ms=TARGET_P99_MS,
        requests=lambda: requests,
    )


def run(pg: Postgres) -> list[Figure]:
    # No row goes silent long enough to poll Replicate: every read is the plain read path
    # (the claim is still tried, and lost, in the same SQL call).
    with (
        pg.database("status") as url,
        local_stack(url, faults=QUIET_FAULTS, status_poll_after_s=3600) as stack,
    ):
        reads = asyncio.run(_running(url, GENERATIONS))
        first = throughput(stack, reads)
        assert first.measured is not None
        figures = [first, latency(stack, reads, first.measured)]
        return report_checked(figures, url)


if __name__ == "__main__":
    run_alone(run)
