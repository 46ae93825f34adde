"""What the API throughput figures share (submit, webhook, status_reads): the floor's bare
psycopg loop, the repeats measured side by side with it, and the figure they make."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from bench.common import CONCURRENCY, REPEATS, DictConn, Figure, Stack, connect, ratio_figure
from bench.loadgen import LoadResult
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
class ApiRepeats:
    """The repeats of one API throughput figure, each measured next to its own floor: the
    (API, floor) pairs, the answers other than `expected`, the API's CPU seconds."""

    expected: int
    pairs: list[tuple[float, float]] = field(default_factory=list)
    errors: int = 0
    cpu_s: float = 0.0

    def add(self, load: tuple[LoadResult, float], floor: float) -> None:
        """One repeat: `bench.common.api_load`'s result and CPU seconds, and its floor."""
        result, cpu_s = load
        self.cpu_s += cpu_s
        self.errors += len(result.statuses) - result.count(self.expected)
        self.pairs.append((result.throughput, floor))


def api_throughput_figure(
    name: str,
    stack: Stack,
    repeats: ApiRepeats,
    *,
    noun: str,
    per_repeat: int,
    at_least: float,
    clients: str = "clients",
    extra_ok: bool = True,
    detail: dict[str, JsonValue] | None = None,
) -> Figure:
    """The API's `noun`s per second against the floor's; it passes only if every answer was
    the expected status (and `extra_ok`). The detail names the clients, the API processes and
    their CPU per request, the requests per repeat and the unexpected answers, then `detail`."""
    errors, expected = repeats.errors, repeats.expected
    unexpected = f", {errors} answers not {expected}" if errors else ""
    return ratio_figure(
        name,
        repeats.pairs,
        raw_unit=f"{noun}s/s",
        at_least=at_least,
        extra_ok=errors == 0 and extra_ok,
        detail={
            clients: CONCURRENCY,
            "api_processes": len(stack.api_pids),
            f"api_cpu_ms_per_{noun}": round(1000 * repeats.cpu_s / (REPEATS * per_repeat), 3),
            f"{noun}s_per_repeat": per_repeat,
            f"non_{expected}_answers": errors,
            **(detail or {}),
            "note": f"{CONCURRENCY} {clients}{unexpected}",
        },
    )
