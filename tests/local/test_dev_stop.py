"""`wanctl dev` stops everything it started on SIGTERM, the embedded PostgreSQL included."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

WAIT_S = 120.0


def free_port_block(size: int = 4) -> int:
    """A port p with p..p+size-1 free (the stack takes four consecutive ports)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + size > 65535:
            continue
        sockets = []
        try:
            for port in range(base, base + size):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no block of free ports")


def postmaster_pid(pgdata: Path) -> int | None:
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return None
    return int(pidfile.read_text().split()[0])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_until(condition: object, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.slow
def test_sigterm_stops_the_stack_and_its_database(tmp_path: Path) -> None:
    port = free_port_block()
    wanctl = Path(sys.executable).with_name("wanctl")
    env = {**os.environ, "WAN_DEV_MODE": "direct"}
    process = subprocess.Popen(  # noqa: S603 - our own console script
        [str(wanctl), "dev", "--port", str(port), "--direct"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pgdata = tmp_path / ".local" / "pgdata"
    try:
        wait_until(lambda: (tmp_path / ".local" / "dev.env").exists(), "the stack to start")
        pid = postmaster_pid(pgdata)
        assert pid is not None
        assert alive(pid)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=WAIT_S) in (0, 130)
        wait_until(lambda: not alive(pid), "PostgreSQL to stop")
        handles = json.loads((pgdata / ".handle_pids.json").read_text() or "[]")
        assert handles == []
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        leftover = postmaster_pid(pgdata)
        if leftover is not None and alive(leftover):
            os.kill(leftover, signal.SIGTERM)
