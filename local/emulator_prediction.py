"""An emulated prediction: its state, its Replicate JSON shape and its tqdm-style logs."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Literal

from pydantic import JsonValue

Status = Literal["starting", "processing", "succeeded", "failed", "canceled", "aborted"]
Event = Literal["start", "output", "logs", "completed"]
Outcome = Literal["succeed", "fail", "abort"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "canceled", "aborted"})
ALL_EVENTS: frozenset[Event] = frozenset({"start", "output", "logs", "completed"})

_PARTIAL_BLOCKS = " ▏▎▍▌▋▊▉"


def now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _mmss(seconds: float) -> str:
    whole = max(0, round(seconds))
    return f"{whole // 60:02d}:{whole % 60:02d}"


def progress_line(done: int, total: int, elapsed_s: float) -> str:
    """A tqdm progress bar line, e.g. ` 45%|████▌     | 9/20 [00:04<00:05,  2.10it/s]`."""
    fraction = done / total
    full, rest = divmod(fraction * 10, 1)
    bar = "█" * int(full)
    if int(full) < 10:
        bar += _PARTIAL_BLOCKS[int(rest * 8)]
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    remaining = (total - done) / rate if rate > 0 else 0.0
    return (
        f"{round(fraction * 100):3d}%|{bar.ljust(10)}| {done}/{total} "
        f"[{_mmss(elapsed_s)}<{_mmss(remaining)}, {rate:5.2f}it/s]"
    )


@dataclass
class WebhookRecord:
    """What happened to one emitted webhook (for tests and for the operator)."""

    event: str
    outcome: Literal["delivered", "failed", "dropped"]
    msg_id: str | None = None
    status_code: int | None = None
    attempts: int = 0

    def to_json(self) -> dict[str, JsonValue]:
        return asdict(self)


@dataclass(eq=False)
class Prediction:
    id: str
    model: str
    version: str
    input: dict[str, JsonValue]
    base_url: str
    webhook: str | None
    events: frozenset[str]
    duration_s: float
    output_size_bytes: int
    status: Status = "starting"
    logs: str = ""
    output: str | None = None
    error: str | None = None
    created_at: datetime = field(default_factory=now)
    started_at: datetime | None = None
    completed_at: datetime | None = None
    webhooks: list[WebhookRecord] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the status is terminal."""
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the status is terminal and every webhook has been delivered, dropped or failed."""
    task: asyncio.Task[None] | None = None
    outbox: asyncio.Queue[tuple[str, bytes] | None] = field(default_factory=asyncio.Queue)
    held: list[tuple[str, bytes]] = field(default_factory=list)

    def to_json(self) -> dict[str, JsonValue]:
        """The prediction object exactly as Replicate's API shapes it."""
        url = f"{self.base_url}/v1/predictions/{self.id}"
        metrics: dict[str, JsonValue] = {}
        if self.started_at and self.completed_at:
            metrics["predict_time"] = (self.completed_at - self.started_at).total_seconds()
        return {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "input": dict(self.input),
            "logs": self.logs,
            "output": self.output,
            "error": self.error,
            "status": self.status,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "completed_at": _iso(self.completed_at),
            "urls": {"get": url, "cancel": f"{url}/cancel"},
            "metrics": metrics,
            "data_removed": False,
            "webhook": self.webhook,
            "webhook_events_filter": list[JsonValue](sorted(self.events)),
        }
