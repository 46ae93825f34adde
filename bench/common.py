"""What the benchmarks share: the embedded PostgreSQL, fresh databases, the local stack, users,
tokens, medians, the ledger check and the one-line report.

Everything runs against the real code on one machine, wired by `local.stack.local_settings`
exactly as `make dev` wires it; the emulator and the API are served by `local.serve.serve`,
each in a process of its own (bench.server), and the clients are a third (bench.loadgen). The
benchmarks' PostgreSQL lives in `.local/bench-pgdata` (never the dev or test data dirs); every
figure group works in its own database, copied from a migrated template built once per run.
The service logs at INFO, as in production, to `.local/bench/*.log`.

The machine is noisy, so a figure is never an absolute number on its own: it is a ratio to a
floor measured in the same run, right next to it, and the median of REPEATS repeats.
"""

from __future__ import annotations

import asyncio
import dataclasses
import http.client
import json
import math
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import dict_row

from bench.env import BENCH_DIR, bench_secrets, setup_logging
from bench.loadgen import LoadResult, run_load
from local.database import (
    create_database,
    drop_database,
    prepare,
    start_embedded,
    with_database,
)
from local.emulator_faults import EmulatorConfig, Faults
from local.ledger import ledger_violations
from local.secrets import LocalSecrets
from local.serve import free_port
from local.stack import local_settings
from local.tokens import mint_token
from shared.core.config import Settings
from shared.core.errors import JsonValue

PGDATA = Path(".local") / "bench-pgdata"
TEMPLATE = "wan_bench_template"
REPEATS = 5
# Clients of the throughput figures; the API's pool gets as many connections, and so does
# every bare-loop floor, so both sides drive the database equally hard.
CONCURRENCY = 16
# API processes serving one port, as containers serve one Modal endpoint (bench.server); one
# per usable CPU unless BENCH_API_PROCESSES says otherwise (1: one container's figures).
API_PROCESSES = int(os.environ.get("BENCH_API_PROCESSES") or len(os.sched_getaffinity(0)))
PROMPT = "a paper boat drifting down a rainy street at dusk"
REPLICATE_MODEL = "wavespeedai/wan-2.1-t2v-480p"
T2V_MODEL = "t2v-14B"
T2V_RESOLUTION = "480p"
T2V_COST = 10
# Settings of every API the benchmarks start, on top of local_settings (see the README).
API_OVERRIDES: dict[str, object] = {
    "database_pool_min": 1,
    "database_pool_max": CONCURRENCY,
    # The one-user figure sends 64 submits at once; the credits must be the only limit (the
    # per-user create rate, 10 a minute by default, would refuse 54 of them; the floors pass
    # the same limits, so both sides run the same guardrail SQL).
    "max_active_generations": 100,
    "create_rate_per_minute": 10_000,
    "log_level": "INFO",
}

DictConn = psycopg.AsyncConnection[dict[str, Any]]


# --- the report ---------------------------------------------------------------------------


@dataclass(kw_only=True)
class Figure:
    """One benchmark figure (ten fields: built by keyword only).

    `value` is the headline: a ratio to the floor (`unit` "x floor") or an absolute value.
    For ratio figures `measured` and `floor` are the medians behind it, in `raw_unit`, and the
    ratio is the median of the per-repeat ratios (each figure next to its own floor).
    """

    name: str
    value: float
    unit: str
    raw_unit: str = ""
    target: str
    passed: bool
    measured: float | None = None
    floor: float | None = None
    repeats: list[dict[str, float]] = field(default_factory=list)
    detail: dict[str, JsonValue] = field(default_factory=dict)

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        if self.floor is not None and self.measured is not None:
            context = (
                f"{_fmt(self.measured)} {self.raw_unit} vs floor {_fmt(self.floor)} "
                f"{self.raw_unit}, {len(self.repeats)} repeats"
            )
        else:
            context = f"{len(self.repeats)} repeats"
        note = self.detail.get("note")
        if isinstance(note, str) and note:
            context += f"; {note}"
        head = f"{self.name}: {_fmt(self.value)} {self.unit}"
        return f"{head} (target {self.target}; {context}) {verdict}"

    def as_json(self) -> dict[str, JsonValue]:
        return {
            "name": self.name,
            "value": round(self.value, 4),
            "unit": self.unit,
            "target": self.target,
            "passed": self.passed,
            "measured": None if self.measured is None else round(self.measured, 4),
            "floor": None if self.floor is None else round(self.floor, 4),
            "raw_unit": self.raw_unit,
            "repeats": [{k: round(v, 4) for k, v in r.items()} for r in self.repeats],
            "detail": self.detail,
        }


def _fmt(value: float) -> str:
    if value == 0 or abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio_figure(
    name: str,
    pairs: Sequence[tuple[float, float]],
    *,
    raw_unit: str,
    at_least: float | None = None,
    at_most: float | None = None,
    extra_ok: bool = True,
    detail: dict[str, JsonValue] | None = None,
    labels: tuple[str, str] = ("measured", "floor"),
) -> Figure:
    """A figure from (measured, floor) pairs, each pair taken side by side in one repeat."""
    ratios = [m / f for m, f in pairs]
    value = median(ratios)
    if at_least is not None:
        target, ok = f">= {at_least} x floor", value >= at_least
    elif at_most is not None:
        target, ok = f"<= {at_most} x floor", value <= at_most
    else:
        raise ValueError("a ratio figure needs a target")
    return Figure(
        name=name,
        value=value,
        unit="x floor",
        target=target,
        passed=ok and extra_ok,
        measured=median([m for m, _ in pairs]),
        floor=median([f for _, f in pairs]),
        raw_unit=raw_unit,
        repeats=[{labels[0]: m, labels[1]: f, "ratio": m / f} for m, f in pairs],
        detail=detail or {},
    )


def run_alone(run: Callable[[Postgres], list[Figure]]) -> None:
    """`python -m bench.<group>`: one group's figures, with its own logs and database."""
    setup_logging()
    postgres = Postgres()
    postgres.prepare_template()
    run(postgres)


def runs_in_fresh_processes(module: str) -> list[Any]:
    """`module.run()` once per repeat, each in a fresh interpreter (peak RSS growth is only
    meaningful in a process whose heap has not already grown for an earlier run); what each
    printed last, as JSON."""
    code = f"import json; from {module} import run; print(json.dumps(run()))"
    runs: list[Any] = []
    for _ in range(REPEATS):
        done = subprocess.run(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return runs


def report_peak_rss(
    name: str,
    value: float,
    *,
    target_mb: float,
    repeats: list[dict[str, float]],
    detail: dict[str, JsonValue],
) -> Figure:
    """Report a peak RSS growth in MB, which passes below `target_mb`."""
    return report(
        Figure(
            name=name,
            value=value,
            unit="MB",
            target=f"< {target_mb} MB",
            passed=value < target_mb,
            repeats=repeats,
            detail=detail,
        )
    )


def report(figure: Figure) -> Figure:
    print(figure.line(), flush=True)
    return figure


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("no values")
    return float(statistics.median(values))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): a value that was actually observed."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


# --- the database -------------------------------------------------------------------------


class Postgres:
    """The benchmarks' embedded server (stopped when this process exits) and its databases."""

    def __init__(self, data_dir: Path = PGDATA) -> None:
        self.server = start_embedded(data_dir)
        self.admin_url = self.server.get_uri()

    def prepare_template(self) -> None:
        """A freshly migrated template; leftovers of an interrupted run are dropped first."""

        async def build() -> None:
            async with await psycopg.AsyncConnection.connect(
                self.admin_url, autocommit=True
            ) as conn:
                cur = await conn.execute(
                    "select datname from pg_database where datname like 'bench\\_%'"
                )
                leftovers = [str(row[0]) for row in await cur.fetchall()]
            for name in [*leftovers, TEMPLATE]:
                await drop_database(self.admin_url, name)
            await create_database(self.admin_url, TEMPLATE)
            await prepare(with_database(self.admin_url, TEMPLATE))

        asyncio.run(build())

    @contextmanager
    def database(self, label: str) -> Iterator[str]:
        """A fresh migrated database for one figure group (dropped afterwards)."""
        name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
        asyncio.run(create_database(self.admin_url, name, template=TEMPLATE))
        try:
            yield with_database(self.admin_url, name)
        finally:
            asyncio.run(drop_database(self.admin_url, name))

    def version(self) -> str:
        with psycopg.connect(self.admin_url) as conn:
            row = conn.execute("show server_version").fetchone()
        return "" if row is None else str(row[0])


async def connect(url: str, *, role: str | None = None) -> DictConn:
    """An autocommit connection returning dict rows; `role` acts as the API does."""
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=dict_row)
    if role is not None:
        await conn.execute(psycopg.sql.SQL("set role {}").format(psycopg.sql.Identifier(role)))
    return conn


async def create_users(conn: DictConn, count: int, *, credits: int) -> list[uuid.UUID]:
    """Sign users up through auth.users (the trigger grants the bonus and writes the ledger),
    then set each balance exactly with one add_credits adjustment, as the tests do."""
    cur = await conn.execute(
        "insert into auth.users (email, email_confirmed_at)"
        " select 'bench-' || gen_random_uuid() || '@example.test', now()"
        " from generate_series(1, %s) returning id",
        (count,),
    )
    ids = [row["id"] for row in await cur.fetchall()]
    if credits != 100:
        await conn.execute(
            "select public.add_credits(u, %s, 'adjustment', 'bench setup')"
            " from unnest(%s::uuid[]) as u",
            (credits - 100, ids),
        )
    return ids


async def processing_generations(
    conn: DictConn, job_ids: Sequence[str], *, per_user: int = 100
) -> list[uuid.UUID]:
    """One running generation per job id, charged and submitted through the SQL functions
    (create_generation, mark_submitted), spread over users `per_user` at a time."""
    users = await create_users(
        conn, math.ceil(len(job_ids) / per_user), credits=per_user * T2V_COST
    )
    owners = [users[i // per_user] for i in range(len(job_ids))]
    cur = await conn.execute(
        """
        with made as materialized (
          select (c.generation ->> 'id')::uuid as id, j.job_id, j.ord
            from unnest(%(owners)s::uuid[], %(jobs)s::text[])
                 with ordinality as j(owner, job_id, ord)
            cross join lateral public.create_generation(
              jsonb_build_object('user_id', j.owner, 'kind', 't2v', 'model', %(model)s::text,
                'resolution', %(resolution)s::text, 'prompt', %(prompt)s::text,
                'cost', %(cost)s::integer),
              1000000, null, null) as c
        )
        select made.id, m.changed
          from made cross join lateral public.mark_submitted(made.id, made.job_id) as m
         order by made.ord
        """,
        {
            "owners": owners,
            "jobs": list(job_ids),
            "model": T2V_MODEL,
            "resolution": T2V_RESOLUTION,
            "prompt": PROMPT,
            "cost": T2V_COST,
        },
    )
    rows = await cur.fetchall()
    if len(rows) != len(job_ids) or not all(row["changed"] for row in rows):
        raise RuntimeError("could not create the running generations")
    return [row["id"] for row in rows]


def violations(url: str) -> int:
    """Ledger invariant violations in one database (run after every scenario)."""

    async def count() -> int:
        conn = await connect(url)
        try:
            return sum(len(rows) for rows in (await ledger_violations(conn)).values())
        finally:
            await conn.close()

    return asyncio.run(count())


def report_checked(figures: list[Figure], url: str) -> list[Figure]:
    """Report figures measured on one database; a figure only passes if its ledger is sound."""
    bad = violations(url)
    for figure in figures:
        figure.detail["ledger_violations"] = bad
        figure.passed = figure.passed and bad == 0
        report(figure)
    return figures


# --- the local stack ----------------------------------------------------------------------


def token(secrets: LocalSecrets, user_id: uuid.UUID) -> str:
    return mint_token(secrets.jwt_secret, user_id, ttl_s=3600)


# Keep-alive round trips measured when each stack starts, for results.json.
KEEPALIVE_RTT_MS: dict[str, float] = {}
_SLOW_RTT_MS = 20.0
_WARNED: set[str] = set()


def keepalive_rtt_ms(base_url: str, path: str, *, count: int = 10) -> float:
    """Median time of a small GET on one reused connection (after one to open it)."""
    url = urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=5)
    times: list[float] = []
    try:
        for _ in range(count + 1):
            started = time.perf_counter()
            conn.request("GET", path)
            conn.getresponse().read()
            times.append((time.perf_counter() - started) * 1000)
    finally:
        conn.close()
    return median(times[1:])


def _check_keepalive(name: str, base_url: str, path: str) -> None:
    """Record the round trip; say once, loudly, when it is not a loopback round trip (a
    server that leaves Nagle's algorithm on stalls every reply split in two writes until the
    client's delayed ACK, about 40 ms, and every HTTP figure then measures that)."""
    rtt = keepalive_rtt_ms(base_url, path)
    KEEPALIVE_RTT_MS[name] = round(max(rtt, KEEPALIVE_RTT_MS.get(name, 0.0)), 2)
    if rtt > _SLOW_RTT_MS and "nagle" not in _WARNED:
        _WARNED.add("nagle")
        print(
            f"bench: WARNING: a keep-alive GET {path} to the {name} takes {rtt:.0f} ms on "
            "loopback: Nagle's algorithm is on for connections accepted by local.serve.serve "
            "(its socket is created without IPPROTO_TCP, so asyncio does not set TCP_NODELAY). "
            "The HTTP figures below include that stall.",
            flush=True,
        )


@dataclass(frozen=True)
class Stack:
    database_url: str
    emulator_url: str
    api_url: str
    settings: Settings
    secrets: LocalSecrets
    api_pids: tuple[int, ...] = ()

    def api_cpu_s(self) -> float:
        """CPU seconds the API processes have used so far (user + system)."""
        return sum(process_cpu_s(pid) for pid in self.api_pids)


def api_load(stack: Stack, requests: Sequence[bytes], **options: Any) -> tuple[LoadResult, float]:
    """`run_load` against the stack's API; also the API's CPU seconds spent meanwhile."""
    before = stack.api_cpu_s()
    result = run_load(stack.api_url, requests, **options)
    return result, stack.api_cpu_s() - before


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def local_stack(
    database_url: str,
    *,
    faults: Faults,
    api: bool = True,
    count_gets: bool = False,
    **overrides: object,
) -> Iterator[Stack]:
    """The Replicate emulator and (unless `api=False`) the combined API, each served by
    `local.serve.serve` in a process of its own (`bench.server`), wired by `local_settings`.
    `settings` are the API's, for the benchmark's own use (floors, a reconciler)."""
    from bench.server import ApiSpec, child_server

    secrets = bench_secrets()
    config = EmulatorConfig(
        api_token=secrets.replicate_api_token,
        webhook_secret=secrets.webhook_secret,
        seed=7,
        faults=faults,
    )
    with child_server("emulator", config.model_dump_json(), count_gets=count_gets) as (
        emulator,
        _,
    ):
        port = free_port()
        api_url = f"http://127.0.0.1:{port}"
        merged = {**API_OVERRIDES, **overrides}
        settings = local_settings(
            database_url=database_url,
            api_url=api_url,
            emulator_url=emulator,
            secrets=secrets,
            storage_dir=BENCH_DIR / "storage",
            **merged,
        )
        stack = Stack(database_url, emulator, api_url, settings, secrets)
        _check_keepalive("emulator", emulator, "/__emulator/faults")
        if not api:
            yield stack
            return
        spec: ApiSpec = {
            "database_url": database_url,
            "port": port,
            "emulator_url": emulator,
            "overrides": merged,
        }
        with ExitStack() as servers:
            pids = []
            for _ in range(API_PROCESSES):
                served, pid = servers.enter_context(child_server("api", json.dumps(spec)))
                if served != api_url:
                    raise RuntimeError(f"the API came up at {served}, not {api_url}")
                pids.append(pid)
            _check_keepalive("API", api_url, "/healthz")
            yield dataclasses.replace(stack, api_pids=tuple(pids))


async def emulator_predictions(stack: Stack, count: int, *, check_each: bool) -> list[str]:
    """`count` predictions created at the emulator without a webhook (they succeed at once);
    their ids, once they have succeeded (each one checked, or only the last)."""
    import httpx

    headers = {"Authorization": f"Bearer {stack.secrets.replicate_api_token}"}
    async with httpx.AsyncClient(base_url=stack.emulator_url, headers=headers) as client:
        gate = asyncio.Semaphore(16)

        async def succeeded(job: str) -> None:
            settled = await client.get(f"/__emulator/predictions/{job}", params={"wait": 10})
            if settled.json()["prediction"]["status"] != "succeeded":
                raise RuntimeError(f"the emulator did not finish prediction {job}")

        async def create() -> str:
            async with gate:
                response = await client.post(
                    f"/v1/models/{REPLICATE_MODEL}/predictions", json={"input": {"prompt": PROMPT}}
                )
                response.raise_for_status()
                job: str = response.json()["id"]
                if check_each:
                    await succeeded(job)
                return job

        jobs = await asyncio.gather(*(create() for _ in range(count)))
        if not check_each:
            await succeeded(jobs[-1])
        return list(jobs)


def quiet_group(
    label: str, figures: Callable[[Stack], list[Figure]]
) -> Callable[[Postgres], list[Figure]]:
    """A group's `run`: a fresh database, the local stack on it with quiet predictions
    (QUIET_FAULTS), and `figures` reported, each passing only if that database's ledger is
    sound."""

    def run(pg: Postgres) -> list[Figure]:
        with pg.database(label) as url, local_stack(url, faults=QUIET_FAULTS) as stack:
            return report_checked(figures(stack), url)

    return run


# Predictions that never move while a figure runs (no timers firing in the emulator) and whose
# webhooks are dropped: the throughput figures measure submits, not the traffic they cause.
QUIET_FAULTS = Faults(duration_s=3600.0, webhook_drop_rate=1.0)
