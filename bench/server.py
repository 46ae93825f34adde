"""The emulator or the API, served by `local.serve.serve` in a process of its own.

    python -m bench.server emulator '<EmulatorConfig JSON>'
    python -m bench.server api '<ApiSpec JSON>'
    python -m bench.server supabase '<database URL>'

In production the API, Replicate and the clients are separate machines; here they are separate
processes, so none of them waits for another's GIL (on two cores, a busy thread that has to
hand the GIL back and forth with a second busy thread costs both of them dearly, and that cost
would be the benchmark's, not the service's). The child prints its base URL on one line, then
serves until its stdin closes.

The API runs as one process per usable CPU, all on one port (SO_REUSEPORT), the way Modal runs
containers side by side behind one endpoint when the load grows: a single Python process can
use one core of the two, while the floors it is compared with (PostgreSQL's backends) use both.

`--count-gets` makes the emulator record when each `GET /v1/predictions/{id}` arrives (a tiny
ASGI middleware, bench code only) and answer them at `GET /__bench/gets`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypedDict

from starlette.types import ASGIApp, Receive, Scope, Send

_PREDICTION_GET = re.compile(r"^/v1/predictions/[^/]+$")


class ApiSpec(TypedDict):
    database_url: str
    port: int
    emulator_url: str
    overrides: dict[str, object]


class CountGets:
    """Records the arrival (time.monotonic, the same clock in every process) of each provider
    GET of one prediction, and serves the list at GET /__bench/gets."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.arrivals: list[float] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            if _PREDICTION_GET.match(scope["path"]):
                self.arrivals.append(time.monotonic())
            elif scope["path"] == "/__bench/gets":
                body = json.dumps(self.arrivals).encode()
                headers = [(b"content-type", b"application/json")]
                headers.append((b"content-length", str(len(body)).encode()))
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


@contextmanager
def child_server(kind: str, config: str, *, count_gets: bool = False) -> Iterator[tuple[str, int]]:
    """Start `python -m bench.server kind config`; yield its base URL and pid; stop it on
    exit."""
    args = [sys.executable, "-m", "bench.server", kind, config]
    if count_gets:
        args.append("--count-gets")
    proc = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError(f"bench.server {kind} did not start (exit {proc.wait()})")
        yield url, proc.pid
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str]) -> None:
    from bench.env import BENCH_DIR, bench_secrets, setup_logging
    from local.serve import serve

    kind, config = argv[0], argv[1]
    setup_logging(f"server-{kind}", append=True)
    app: ASGIApp
    port = 0
    reuse_port = False
    if kind == "emulator":
        from local.emulator import create_emulator_app
        from local.emulator_faults import EmulatorConfig

        app = create_emulator_app(EmulatorConfig.model_validate_json(config))
        if "--count-gets" in argv:
            app = CountGets(app)
    elif kind == "api":
        from local.devserver import create_app
        from local.stack import local_settings

        spec: ApiSpec = json.loads(config)
        port = spec["port"]
        reuse_port = True
        settings = local_settings(
            database_url=spec["database_url"],
            api_url=f"http://127.0.0.1:{port}",
            emulator_url=spec["emulator_url"],
            secrets=bench_secrets(),
            storage_dir=BENCH_DIR / "storage",
            **spec["overrides"],
        )
        app = create_app(settings=settings)
    elif kind == "supabase":
        from local.configs import supabase_emulator_config
        from local.supabase.app import create_app as create_supabase_app

        app = create_supabase_app(
            supabase_emulator_config(bench_secrets(), config, BENCH_DIR / "supabase-storage")
        )
    else:
        raise SystemExit(f"unknown server kind {kind!r}")
    with serve(app, port=port, reuse_port=reuse_port) as url:
        print(url, flush=True)
        sys.stdin.read()  # until the parent closes it


if __name__ == "__main__":
    main(sys.argv[1:])
