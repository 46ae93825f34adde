"""Submitting generations through the API, against the same work done without HTTP.

    python -m bench.submit

submit_throughput: 16 concurrent clients POST /api/generation/text-to-video (auth, validation,
create_generation, the provider create at the emulator, mark_submitted), users spread so the
active cap never bites. Floor: the same two SQL calls (same SQL text, as service_role, 16
connections) and the same create through the `replicate` client at the emulator, from a bare
asyncio loop. Target: >= 0.6 x floor.

one_user_64_submits: one user who can afford exactly AFFORDABLE generations sends 64 submits at
once, round after round (a fresh user each round). Exactly AFFORDABLE must be accepted (201),
the rest refused (402), the balance must end at 0. Floor: create_generation alone from a bare
psycopg loop, 64 connections, same rounds. Target: >= 0.5 x floor and the exact count.

The clients run in a process of their own (bench.loadgen), and so do the emulator and the API
(bench.server, one API process per CPU); the floors run in this process. Each API process has
a pool of 16 connections; the active cap is 100 and the create rate 10,000 a minute per user
(bench.common.API_OVERRIDES), and the floors pass those same limits to create_generation. The
emulator's predictions stay `starting` and their webhooks are dropped, so no side traffic runs
while a figure is timed.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
import psycopg
from psycopg.types.json import Jsonb
from replicate.client import Client

from bench.common import (
    CONCURRENCY,
    PROMPT,
    REPEATS,
    T2V_COST,
    T2V_MODEL,
    T2V_RESOLUTION,
    DictConn,
    Figure,
    Stack,
    api_load,
    connect,
    create_users,
    quiet_group,
    ratio_figure,
    run_alone,
    token,
)
from bench.loadgen import render, run_load
from bench.throughput import ApiThroughput, bare_loop
from shared.core.catalog import load_catalog
from shared.core.config import Settings
from shared.core.domain import NewGeneration
from shared.provider.replicate import ReplicateProvider

SUBMITS = 600  # per repeat and side
USERS = 60  # per repeat and side: 10 submits each
BURST = 64
AFFORDABLE = 20
ROUNDS = 8  # rounds of 64 per repeat and side
WARMUP = 64
SUBMIT_PATH = "/api/generation/text-to-video"

# The text PostgresTransport sends, so both sides use the same prepared statements.
CREATE_SQL = (
    "select * from public.create_generation(p_new => %(p_new)s, p_max_active => %(p_max_active)s, "
    "p_rate_per_minute => %(p_rate_per_minute)s, p_daily_budget_usd => %(p_daily_budget_usd)s)"
)
MARK_SQL = (
    "select * from public.mark_submitted(p_generation_id => %(p_generation_id)s, "
    "p_job_id => %(p_job_id)s)"
)


def _create_args(user_id: uuid.UUID, settings: Settings) -> dict[str, Any]:
    """create_generation's arguments with the API's own limits (max active, create rate,
    daily budget), so the floor runs the same guardrail SQL as the API."""
    new = NewGeneration(
        user_id=user_id,
        kind="t2v",
        model=T2V_MODEL,
        resolution=T2V_RESOLUTION,
        prompt=PROMPT,
        cost=T2V_COST,
    )
    return {
        "p_new": Jsonb(new.model_dump(mode="json")),
        "p_max_active": settings.max_active_generations,
        "p_rate_per_minute": settings.create_rate_per_minute,
        "p_daily_budget_usd": settings.provider_daily_budget_usd,
    }


def _submit_requests(stack: Stack, users: Sequence[uuid.UUID], count: int) -> list[bytes]:
    body = json.dumps({"prompt": PROMPT, "model": T2V_MODEL, "resolution": T2V_RESOLUTION}).encode()
    tokens = [token(stack.secrets, u) for u in users]
    return [
        render(
            stack.api_url,
            "POST",
            SUBMIT_PATH,
            headers={
                "authorization": f"Bearer {tokens[i % len(tokens)]}",
                "content-type": "application/json",
            },
            body=body,
        )
        for i in range(count)
    ]


async def _users(url: str, count: int, credits: int) -> list[uuid.UUID]:
    conn = await connect(url)
    try:
        return await create_users(conn, count, credits=credits)
    finally:
        await conn.close()


# --- the floors -----------------------------------------------------------------------------


async def _bare_submits(stack: Stack, users: Sequence[uuid.UUID], count: int) -> float:
    """create_generation, the create at the emulator, mark_submitted: CONCURRENCY at a time,
    no HTTP layer in front. Returns submits per second."""
    settings = stack.settings
    offering = load_catalog(None).lookup("t2v", T2V_MODEL, T2V_RESOLUTION)
    model_input = load_catalog(None).build_input(
        offering, prompt=PROMPT, negative_prompt=None, seed=None, aspect_ratio=None
    )
    webhook_base = settings.public_webhook_url
    transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=100))
    client = Client(
        api_token=stack.secrets.replicate_api_token,
        transport=transport,
        base_url=stack.emulator_url,
        timeout=httpx.Timeout(settings.replicate_timeout_s, connect=5.0),
        headers={"Cancel-After": f"{settings.prediction_deadline_s}s"},
    )

    async def one(conn: DictConn, user_id: uuid.UUID) -> None:
        cur = await conn.execute(CREATE_SQL, _create_args(user_id, settings))
        row = await cur.fetchone()
        assert row is not None
        gen_id = row["generation"]["id"]
        made = await client.models.predictions.async_create(
            model=offering.replicate_model,
            input=model_input,
            webhook=f"{webhook_base}?generation_id={gen_id}",
            webhook_events_filter=list(ReplicateProvider.WEBHOOK_EVENTS),
        )
        await conn.execute(MARK_SQL, {"p_generation_id": gen_id, "p_job_id": made.id})

    try:
        submits = [users[i % len(users)] for i in range(count)]
        return await bare_loop(stack.database_url, submits, one)
    finally:
        await transport.aclose()


async def _bare_one_user(
    url: str, settings: Settings, users: Sequence[uuid.UUID]
) -> tuple[float, list[int]]:
    """Per user (one round each), BURST create_generation calls at once on BURST connections.
    Returns calls per second and the number accepted in each round."""
    conns = [await connect(url, role="service_role") for _ in range(BURST)]
    accepted: list[int] = []
    try:

        async def one(conn: DictConn, user_id: uuid.UUID) -> bool:
            try:
                await conn.execute(CREATE_SQL, _create_args(user_id, settings))
            except psycopg.Error as exc:
                if exc.sqlstate != "WN402":
                    raise
                return False
            return True

        loop = asyncio.get_running_loop()
        started = loop.time()
        for user_id in users:
            results = await asyncio.gather(*(one(c, user_id) for c in conns))
            accepted.append(sum(results))
        elapsed = loop.time() - started
    finally:
        for conn in conns:
            await conn.close()
    return BURST * len(users) / elapsed, accepted


# --- the figures ----------------------------------------------------------------------------


def submit_throughput(stack: Stack) -> Figure:
    url = stack.database_url
    warm_users = asyncio.run(_users(url, 8, 10_000))
    run_load(stack.api_url, _submit_requests(stack, warm_users, WARMUP), concurrency=CONCURRENCY)
    asyncio.run(_bare_submits(stack, warm_users, WARMUP))

    measured = ApiThroughput(stack, expected=201)
    for _ in range(REPEATS):
        floor_users = asyncio.run(_users(url, USERS, 10_000))
        floor = asyncio.run(_bare_submits(stack, floor_users, SUBMITS))
        users = asyncio.run(_users(url, USERS, 10_000))
        measured.add(_submit_requests(stack, users, SUBMITS), floor)
    return measured.figure("submit_throughput", noun="submit", at_least=0.6)


def one_user_burst(stack: Stack) -> Figure:
    url = stack.database_url
    credits = AFFORDABLE * T2V_COST
    pairs: list[tuple[float, float]] = []
    wrong_rounds: list[str] = []
    cpu_s = 0.0
    for repeat in range(REPEATS):
        floor_users = asyncio.run(_users(url, ROUNDS, credits))
        floor, floor_accepted = asyncio.run(_bare_one_user(url, stack.settings, floor_users))
        users = asyncio.run(_users(url, ROUNDS, credits))
        requests = [
            r for u in users for r in _submit_requests(stack, [u], BURST)
        ]  # round after round, one user each
        result, cpu = api_load(stack, requests, concurrency=BURST, batch=BURST)
        cpu_s += cpu
        for i in range(ROUNDS):
            answers = result.statuses[i * BURST : (i + 1) * BURST]
            ok, refused = answers.count(201), answers.count(402)
            if ok != AFFORDABLE or refused != BURST - AFFORDABLE:
                wrong_rounds.append(f"repeat {repeat} round {i}: {ok} x 201, {refused} x 402")
            if floor_accepted[i] != AFFORDABLE:
                wrong_rounds.append(f"repeat {repeat} floor round {i}: {floor_accepted[i]}")
        wrong_rounds += asyncio.run(_balances_zero(url, [*users, *floor_users]))
        pairs.append((result.throughput, floor))
    return ratio_figure(
        "one_user_64_submits",
        pairs,
        raw_unit="submits/s",
        at_least=0.5,
        extra_ok=not wrong_rounds,
        detail={
            "affordable": AFFORDABLE,
            "burst": BURST,
            "api_processes": len(stack.api_pids),
            "api_cpu_ms_per_submit": round(1000 * cpu_s / (REPEATS * ROUNDS * BURST), 3),
            "rounds_per_repeat": ROUNDS,
            "wrong_counts": list[Any](wrong_rounds[:10]),
            "note": (
                f"exactly {AFFORDABLE} of {BURST} accepted in all {REPEATS * ROUNDS} rounds"
                if not wrong_rounds
                else f"{len(wrong_rounds)} rounds with the wrong count"
            ),
        },
    )


async def _balances_zero(url: str, users: Sequence[uuid.UUID]) -> list[str]:
    conn = await connect(url)
    try:
        cur = await conn.execute(
            "select u.id, u.credits, (select count(*) from public.generations g"
            " where g.user_id = u.id) as made from public.users u where u.id = any(%s)",
            (list(users),),
        )
        return [
            f"user {row['id']}: balance {row['credits']}, {row['made']} generations"
            for row in await cur.fetchall()
            if row["credits"] != 0 or row["made"] != AFFORDABLE
        ]
    finally:
        await conn.close()


run = quiet_group("submit", lambda stack: [submit_throughput(stack), one_user_burst(stack)])


if __name__ == "__main__":
    run_alone(run)
