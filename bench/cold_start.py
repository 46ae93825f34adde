"""Cold start of each web function: process start to its first answered request.

    python -m bench.cold_start

For each endpoint module (functions.text_to_video, image_to_video, status, webhook, controls):
start a fresh Python process that imports the module, builds `create_app()` and serves it with
uvicorn on a free port, configured only by environment variables pointing at the local stack
(as Modal configures it with secrets); measure from just before the process is spawned until
GET /healthz answers 200 (polled every POLL_S). The app's lifespan opens its services (database
pool, provider client, storage) before uvicorn listens, so that is included. Floor: the same
for a bare FastAPI app with one route. Target: <= 2 x floor, for each function.

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

from bench.common import (
    REPEATS,
    Figure,
    Postgres,
    free_port,
    ratio_figure,
    report,
)
from bench.env import BENCH_DIR, bench_secrets, setup_logging
from local.stack import local_environment

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


def _environment(database_url: str) -> dict[str, str]:
    """What a deployed function gets: settings in environment variables (shared/core/config.py)."""
    api = "http://127.0.0.1:9"  # never called during a cold start
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        local_environment(
            database_url=database_url,
            api_url=api,
            emulator_url=api,
            secrets=bench_secrets(),
            storage_dir=(BENCH_DIR / "storage").resolve(),
        )
    )
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


def cold_start(target: str, env: dict[str, str]) -> float:
    """Seconds from spawning a process that serves `target` to its first 200 on /healthz."""
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
        return time.perf_counter() - started
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def run(pg: Postgres) -> list[Figure]:
    with pg.database("cold") as url:
        env = _environment(url)
        targets = (FLOOR, *FUNCTIONS)
        for target in targets:  # warm-up round, not measured
            cold_start(target, env)
        times: dict[str, list[float]] = {t: [] for t in targets}
        for _ in range(REPEATS):
            for target in targets:
                times[target].append(cold_start(target, env))
    figures = []
    for function in FUNCTIONS:
        pairs = [(f * 1000, b * 1000) for f, b in zip(times[function], times[FLOOR], strict=True)]
        name = function.removeprefix("functions.")
        figures.append(
            report(
                ratio_figure(
                    f"cold_start_{name}",
                    pairs,
                    raw_unit="ms",
                    at_most=2.0,
                    labels=("ms", "floor_ms"),
                )
            )
        )
    return figures


if __name__ == "__main__":
    setup_logging()
    postgres = Postgres()
    postgres.prepare_template()
    run(postgres)
