"""What the API throughput figures share (submit, webhook, status_reads): the floor's bare
psycopg loop, and the repeats measured side by side with it that make the figure."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from bench.common import CONCURRENCY, DictConn, Figure, Stack, api_load, connect, ratio_figure
from shared.core.errors import JsonValue

T = TypeVar("T")


async def bare_loop(
    url: str, items: Sequence[T], call: Callable[[DictConn, T], Awaitable[None]]
) -> float:
    """`call` once per item, in order, on CONCURRENCY service_role connections (each takes the
    next item as soon as it is free), with no HTTP layer in front; items per second. Only the
    calls are timed, not opening the connections."""
    conns = [await connect(url, role="service_role") for _ in range(CONCURRENCY)]
    queue = list(reversed(items))
    try:

        async def worker(conn: DictConn) -> None:
            while queue:
                await call(conn, queue.pop())

        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.gather(*(worker(c) for c in conns))
        return len(items) / (loop.time() - started)
    finally:
        for conn in conns:
            await conn.close()


@dataclass
class ApiThroughput:
    """One API throughput figure, measured repeat by repeat next to its own floor: the (API,
    floor) pairs, the answers other than `expected`, the API's CPU seconds, the requests."""

    stack: Stack
    expected: int
    pairs: list[tuple[float, float]] = field(default_factory=list)
    errors: int = 0
    cpu_s: float = 0.0
    requests: int = 0

    def add(self, requests: Sequence[bytes], floor: float) -> None:
        """One repeat: `requests` sent to the API by CONCURRENCY clients, next to `floor`
        measured just before."""
        result, cpu_s = api_load(self.stack, requests, concurrency=CONCURRENCY)
        self.cpu_s += cpu_s
        self.errors += len(result.statuses) - result.count(self.expected)
        self.requests += len(requests)
        self.pairs.append((result.throughput, floor))

    def figure(
        self,
        name: str,
        *,
        noun: str,
        at_least: float,
        clients: str = "clients",
        extra_ok: bool = True,
        detail: dict[str, JsonValue] | None = None,
    ) -> Figure:
        """The API's `noun`s per second against the floor's; it passes only if every answer
        was the expected status (and `extra_ok`). The detail names the clients, the API
        processes and their CPU per request, the requests per repeat and the unexpected
        answers, then `detail`."""
        errors, expected = self.errors, self.expected
        unexpected = f", {errors} answers not {expected}" if errors else ""
        return ratio_figure(
            name,
            self.pairs,
            raw_unit=f"{noun}s/s",
            at_least=at_least,
            extra_ok=errors == 0 and extra_ok,
            detail={
                clients: CONCURRENCY,
                "api_processes": len(self.stack.api_pids),
                f"api_cpu_ms_per_{noun}": round(1000 * self.cpu_s / self.requests, 3),
                f"{noun}s_per_repeat": self.requests // len(self.pairs),
                f"non_{expected}_answers": errors,
                **(detail or {}),
                "note": f"{CONCURRENCY} {clients}{unexpected}",
            },
        )
