"""A lean HTTP/1.1 load generator, run in its own process.

    python -m bench.loadgen < spec.json > result.json

The clients of a benchmark stand for browsers and for Replicate: they must not share the
server's interpreter (its GIL) nor spend more CPU than they have to on a 2-core machine, so they
run here, in a separate process, over raw keep-alive connections (an asyncio Protocol, no HTTP
library). Requests arrive pre-rendered from the parent (`render`); this only sends them.

Modes:
- closed loop: `concurrency` connections, each sends its next request when the previous one is
  answered; with `batch`, the requests go in groups and each group waits for the last answer
  (a barrier), e.g. 64 submits at once, round after round.
- open loop (`rate` set): request i is sent at start + i / rate whatever the answers, and its
  latency counts from that scheduled moment, so a stalled server cannot hide its queue.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypedDict
from urllib.parse import urlsplit


class Spec(TypedDict):
    host: str
    port: int
    requests: list[str]  # raw HTTP/1.1 requests, latin-1
    concurrency: int
    batch: int | None
    rate: float | None


@dataclass(frozen=True)
class LoadResult:
    elapsed_s: float
    statuses: list[int]
    latencies_s: list[float]
    cpu_s: float  # the load generator's own CPU time (user + system)

    @property
    def throughput(self) -> float:
        return len(self.statuses) / self.elapsed_s

    def count(self, status: int) -> int:
        return sum(1 for s in self.statuses if s == status)


def render(
    base_url: str,
    method: str,
    target: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
) -> bytes:
    """One HTTP/1.1 request, ready to write on a keep-alive connection."""
    url = urlsplit(base_url)
    lines = [f"{method} {target} HTTP/1.1", f"host: {url.netloc}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def run_load(
    base_url: str,
    requests: Sequence[bytes],
    *,
    concurrency: int,
    batch: int | None = None,
    rate: float | None = None,
) -> LoadResult:
    """Send `requests` from a fresh load-generator process; blocks until it is done."""
    url = urlsplit(base_url)
    spec: Spec = {
        "host": url.hostname or "127.0.0.1",
        "port": url.port or 80,
        "requests": [r.decode("latin-1") for r in requests],
        "concurrency": concurrency,
        "batch": batch,
        "rate": rate,
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench.loadgen"],
        input=json.dumps(spec).encode(),
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr.decode()[-2000:]}")
    data = json.loads(done.stdout)
    return LoadResult(
        elapsed_s=float(data["elapsed_s"]),
        statuses=[int(s) for s in data["statuses"]],
        latencies_s=[float(x) for x in data["latencies_s"]],
        cpu_s=float(data["cpu_s"]),
    )


# --- the client side ------------------------------------------------------------------------


class _Client(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: write a request, parse its answer straight from
    the bytes received (an asyncio Protocol: no stream layer, no task per read)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bool]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionResetError("the server closed the connection"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is None or self.waiter.done():
            return
        try:
            answer = _parse(self.buffer)
        except ValueError as exc:
            self.waiter.set_exception(exc)
            return
        if answer is not None:
            status, keep, used = answer
            del self.buffer[:used]
            self.waiter.set_result((status, keep))

    async def exchange(self, request: bytes) -> tuple[int, bool]:
        """Send one request, wait for its whole answer; (status, whether the server keeps the
        connection open)."""
        assert self.transport is not None
        if self.closed:
            raise ConnectionResetError("the connection is closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _parse(buffer: bytearray) -> tuple[int, bool, int] | None:
    """(status, keep-alive, bytes used) once `buffer` holds a whole answer; None until then."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    fields: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            fields[name.strip().lower()] = value.strip().lower()
    keep = fields.get("connection") != "close"
    at = end + 4
    if fields.get("transfer-encoding") == "chunked":
        while True:
            eol = buffer.find(b"\r\n", at)
            if eol < 0:
                return None
            size = int(bytes(buffer[at:eol]).split(b";")[0], 16)
            at = eol + 2 + size + 2
            if len(buffer) < at:
                return None
            if size == 0:
                return status, keep, at
    at += int(fields.get("content-length", "0"))
    return (status, keep, at) if len(buffer) >= at else None


Connection = _Client


async def _open(host: str, port: int) -> Connection:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(_Client, host, port)
    return client


def _close(conn: Connection) -> None:
    conn.close()


async def _send(host: str, port: int, conn: Connection, request: bytes) -> tuple[int, Connection]:
    """Exchange on `conn`; a connection the server closed is replaced (status 0 on failure)."""
    try:
        status, keep = await conn.exchange(request)
    except (OSError, ValueError, IndexError):
        _close(conn)
        return 0, await _open(host, port)
    if not keep:
        _close(conn)
        conn = await _open(host, port)
    return status, conn


async def _closed_loop(spec: Spec, requests: list[bytes]) -> tuple[float, list[int], list[float]]:
    host, port = spec["host"], spec["port"]
    conns = [await _open(host, port) for _ in range(spec["concurrency"])]
    statuses = [0] * len(requests)
    latencies = [0.0] * len(requests)
    batch = spec["batch"] or len(requests)

    async def worker(slot: int, queue: list[int]) -> None:
        while queue:
            i = queue.pop()
            started = time.perf_counter()
            statuses[i], conns[slot] = await _send(host, port, conns[slot], requests[i])
            latencies[i] = time.perf_counter() - started

    started = time.perf_counter()
    for first in range(0, len(requests), batch):
        queue = list(reversed(range(first, min(first + batch, len(requests)))))
        await asyncio.gather(*(worker(slot, queue) for slot in range(len(conns))))
    elapsed = time.perf_counter() - started
    for conn in conns:
        _close(conn)
    return elapsed, statuses, latencies


async def _open_loop(spec: Spec, requests: list[bytes]) -> tuple[float, list[int], list[float]]:
    host, port = spec["host"], spec["port"]
    rate = spec["rate"]
    assert rate is not None
    idle = [await _open(host, port) for _ in range(spec["concurrency"])]
    statuses = [0] * len(requests)
    latencies = [0.0] * len(requests)
    loop = asyncio.get_running_loop()

    async def one(i: int, scheduled: float) -> None:
        conn = idle.pop() if idle else await _open(host, port)
        statuses[i], conn = await _send(host, port, conn, requests[i])
        latencies[i] = loop.time() - scheduled
        idle.append(conn)

    tasks: list[asyncio.Task[None]] = []
    start = loop.time() + 0.05
    for i in range(len(requests)):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - start
    for conn in idle:
        _close(conn)
    return elapsed, statuses, latencies


def main() -> None:
    spec: Spec = json.load(sys.stdin)
    requests = [r.encode("latin-1") for r in spec["requests"]]
    run = _open_loop if spec["rate"] else _closed_loop
    elapsed, statuses, latencies = asyncio.run(run(spec, requests))
    out = {"elapsed_s": elapsed, "statuses": statuses, "latencies_s": latencies}
    json.dump({**out, "cpu_s": time.process_time()}, sys.stdout)


if __name__ == "__main__":
    main()
