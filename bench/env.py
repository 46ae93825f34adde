"""Where the benchmarks keep their files, their secrets and their logs: the bottom of bench/
(bench.common and bench.server both import it; it imports neither)."""

from __future__ import annotations

import logging
from pathlib import Path

from local.secrets import LocalSecrets, load_local_secrets
from shared.web.app import RequestIdFilter, with_request_ids

BENCH_DIR = Path(".local") / "bench"


def bench_secrets() -> LocalSecrets:
    return load_local_secrets(BENCH_DIR)


def setup_logging(name: str = "bench", *, append: bool = False) -> Path:
    """Send the service's INFO logs (as in production) to a file, not the console.

    `shared.web.app.configure_logging` sees the request-id filter on this handler and leaves the
    root logger alone, so the API and the emulator log here too. The main process starts the
    logs afresh (its own and the servers'); each server process appends to its kind's log.
    """
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    if not append:
        for old in BENCH_DIR.glob("*.log"):
            old.unlink()
    path = BENCH_DIR / f"{name}.log"
    root = logging.getLogger()
    if not any(isinstance(f, RequestIdFilter) for h in root.handlers for f in h.filters):
        root.addHandler(with_request_ids(logging.FileHandler(path, mode="a" if append else "w")))
    root.setLevel(logging.INFO)
    for noisy in ("pgserver", "httpx", "httpcore", "psycopg.pool"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return path
