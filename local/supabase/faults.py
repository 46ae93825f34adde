"""Fault knobs of the Supabase emulator, shared by all its services (REST, Auth, Storage).

What a client of a hosted Supabase project meets on a bad day: a 5xx from PostgREST or the
gateway in PostgREST's JSON shape, a proxy's HTML 502/504 page, latency, and a connection that
drops mid-answer. Set at start (`SupabaseFaults` in the emulator's config) and at run time with
`POST /__emulator/faults` (JSON, the same field names; `GET` reads them), as for the Replicate
emulator (`local.emulator_faults`, whose dice and validation this reuses).
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from local.emulator_faults import Dice, Rate, Seconds

CONTROL_PREFIX = "/__emulator/"


class SupabaseFaults(BaseModel):
    """Rates are probabilities in [0, 1], rolled once per request whose path starts with
    `path_prefix` (the emulator's own /__emulator/ routes are never faulted)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    error_rate: Rate = 0.0
    """Share of requests answered `error_status` with a PostgREST-shaped JSON error (PGRST000)."""
    error_status: Annotated[int, Field(ge=500, le=599)] = 503
    gateway_error_rate: Rate = 0.0
    """Share of requests answered by the gateway's HTML error page (not JSON at all)."""
    gateway_status: Literal[502, 504] = 502
    drop_rate: Rate = 0.0
    """Share of requests whose connection is closed after the status line, before the body."""
    latency_s: Seconds = 0.0
    """Sleep before handling each request."""
    path_prefix: str = "/"
    """Only requests under this path are faulted (e.g. `/rest/v1/rpc/`)."""


class Dropped(Exception):
    """Raised after the headers went out: uvicorn then closes the connection mid-answer."""


class FaultState:
    """The current knobs and their dice (one sequence per emulator, reproducible by seed)."""

    def __init__(self, faults: SupabaseFaults, seed: int | None) -> None:
        self.initial = faults
        self.faults = faults
        self.dice = Dice(seed)

    def reset(self) -> None:
        self.faults = self.initial
        self.dice.reset()


_GATEWAY_PAGE = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    "</body>\r\n</html>\r\n"
)
_REASONS = {502: "Bad Gateway", 504: "Gateway Time-out"}


class FaultMiddleware:
    """Pure ASGI middleware (streams untouched) that plays the configured faults."""

    def __init__(self, app: ASGIApp, state: FaultState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        faults = self.state.faults
        if (
            scope["type"] != "http"
            or path.startswith(CONTROL_PREFIX)
            or not path.startswith(faults.path_prefix)
        ):
            await self.app(scope, receive, send)
            return
        dice = self.state.dice
        if faults.latency_s:
            await asyncio.sleep(faults.latency_s)
        if dice.roll(faults.drop_rate):
            await send(_start(200, "application/json", 1024))
            raise Dropped(f"emulated dropped connection on {path}")
        if dice.roll(faults.gateway_error_rate):
            status = faults.gateway_status
            page = _GATEWAY_PAGE.format(status=status, reason=_REASONS[status]).encode()
            await _answer(send, status, "text/html", page)
            return
        if dice.roll(faults.error_rate):
            body = json.dumps(
                {
                    "code": "PGRST000",
                    "message": "Could not connect with the database due to an incorrect "
                    "db-uri or due to the PostgreSQL service not running.",
                    "details": "emulated fault",
                    "hint": None,
                }
            ).encode()
            await _answer(send, faults.error_status, "application/json; charset=utf-8", body)
            return
        await self.app(scope, receive, send)


def _start(status: int, content_type: str, length: int) -> Message:
    return {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", content_type.encode()),
            (b"content-length", str(length).encode()),
        ],
    }


async def _answer(send: Send, status: int, content_type: str, body: bytes) -> None:
    await send(_start(status, content_type, len(body)))
    await send({"type": "http.response.body", "body": body})
