"""Cold start of each web function: process start to its first answered request.

    python -m bench.cold_start

For each endpoint module (functions.text_to_video, image_to_video, status, webhook, controls):
start a fresh Python process that imports the module, builds `create_app()` and serves it with
uvicorn on a free port, configured only by environment variables (as Modal configures it with
secrets); measure from just before the process is spawned until GET /healthz answers 200
(polled every POLL_S). The app's lifespan opens its services (database transport, provider
client, storage, the JWKS) before uvicorn listens, so that is included. Floor: the same for a
bare FastAPI app with one route. Target: <= 1.5 x floor, for each function.

The configuration is production's, as modal_app.py deploys it: RPC through PostgREST, files in
Supabase Storage, tokens verified through the JWKS, all against the Supabase emulator (started
here in a process of its own), and TLS trusting the system's CA directory (SSL_CERT_DIR, when
this machine has it, as the image does). The JWKS fetch at start is part of the measured start.
The direct configuration (psycopg to the database, the legacy HS256 secret, local storage) is
measured too, as information (`cold_start_direct_cpu_<function>`, no target): it is the tests' and
`WAN_DEV_MODE=direct`'s, never deployed.

Also the CPU time the process spent until that first answer (user + system, from /proc): on a
shared, busy machine wall time swings with the neighbours' load, CPU time much less, and it is
what each import and client costs (`cold_start_cpu_<function>`, same target).

One unmeasured round first warms the OS file cache; then REPEATS rounds, each starting the
floor and every function in turn, so drift affects all of them alike.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

from bench.common import (
    REPEATS,
    Figure,
    Postgres,
    ratio_figure,
    report,
    run_alone,
)
from bench.env import BENCH_DIR, bench_secrets
from bench.server import child_server
from local.serve import free_port
from local.stack import local_environment
from shared.core.http import SYSTEM_CA_DIR

FUNCTIONS = (
    "functions.text_to_video",
    "functions.image_to_video",
    "functions.status",
    "functions.webhook",
    "functions.controls",
)
FLOOR = "bare"
POLL_S = 0.005
TIMEOUT_S = 60.0

# The child: the same uvicorn call for the floor and for every function.
CHILD = """
import sys
import uvicorn

target, port = sys.argv[1], int(sys.argv[2])
if target == "bare":
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}
else:
    import importlib

    app = importlib.import_module(target).create_app()
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
"""


def _environment(database_url: str, supabase_url: str | None) -> dict[str, str]:
    """What a deployed function gets: settings in environment variables (shared/core/config.py);
    production's configuration against the Supabase emulator at `supabase_url`, the direct one
    when it is None."""
    api = "http://127.0.0.1:9"  # never called during a cold start
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if k in keep}
    secrets = bench_secrets()
    env.update(
        local_environment(
            database_url=database_url,
            api_url=api,
            emulator_url=api,
            secrets=secrets,
            storage_dir=(BENCH_DIR / "storage").resolve(),
            supabase_url=supabase_url,
        )
    )
    if supabase_url is not None and Path(SYSTEM_CA_DIR).is_dir():  # as modal_app.py's image
        env["SSL_CERT_DIR"] = SYSTEM_CA_DIR
    env["LOG_LEVEL"] = "WARNING"
    return env


def _answers(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process (Linux /proc; fields 14 and 15 of stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cold_start(target: str, env: dict[str, str]) -> tuple[float, float]:
    """Seconds from spawning a process that serves `target` to its first 200 on /healthz, and
    the CPU seconds it spent until then."""
    port = free_port()
    log = (BENCH_DIR / "cold-start.log").open("a")
    started = time.perf_counter()
    proc = subprocess.Popen(  # noqa: S603 (our own interpreter, our own code)
        [sys.executable, "-c", CHILD, target, str(port)],
        env=env,
        cwd=Path.cwd(),
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        while not _answers(port):
            if proc.poll() is not None:
                raise RuntimeError(f"{target} exited with {proc.returncode} (see {log.name})")
            if time.perf_counter() - started > TIMEOUT_S:
                raise RuntimeError(f"{target} did not answer within {TIMEOUT_S:g} s")
            time.sleep(POLL_S)
        return time.perf_counter() - started, _cpu_seconds(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _rounds(env: dict[str, str]) -> dict[str, list[tuple[float, float]]]:
    """One warm-up round, then REPEATS measured rounds of the floor and every function."""
    targets = (FLOOR, *FUNCTIONS)
    for target in targets:
        cold_start(target, env)
    times: dict[str, list[tuple[float, float]]] = {t: [] for t in targets}
    for _ in range(REPEATS):
        for target in targets:
            times[target].append(cold_start(target, env))
    return times


def run(pg: Postgres) -> list[Figure]:
    with pg.database("cold") as url:
        with child_server("supabase", url) as (supabase_url, _):
            production = _rounds(_environment(url, supabase_url))
        direct = _rounds(_environment(url, None))
    figures = []
    for which, prefix in ((0, "cold_start"), (1, "cold_start_cpu")):
        for function in FUNCTIONS:
            pairs = [
                (f[which] * 1000, b[which] * 1000)
                for f, b in zip(production[function], production[FLOOR], strict=True)
            ]
            name = function.removeprefix("functions.")
            figure = ratio_figure(
                f"{prefix}_{name}", pairs, raw_unit="ms", at_most=1.5, labels=("ms", "floor_ms")
            )
            figures.append(report(figure))
    for function in FUNCTIONS:
        ratios = [f[1] / b[1] for f, b in zip(direct[function], direct[FLOOR], strict=True)]
        figures.append(
            report(
                Figure(
                    name=f"cold_start_direct_cpu_{function.removeprefix('functions.')}",
                    value=median(ratios),
                    unit="x floor",
                    target="none (informational: the direct configuration is never deployed)",
                    passed=True,
                    measured=median(f[1] * 1000 for f in direct[function]),
                    floor=median(b[1] * 1000 for b in direct[FLOOR]),
                    raw_unit="ms",
                    repeats=[{"ratio": r} for r in ratios],
                )
            )
        )
    return figures


if __name__ == "__main__":
    run_alone(run)
