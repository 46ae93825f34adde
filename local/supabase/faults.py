"""Fault knobs of the Supabase emulator, shared by all its services (REST, Auth, Storage).

What a client of a hosted Supabase project meets on a bad day: a 5xx from the service in its own
JSON shape, a proxy's HTML 502/504 page, latency, and a connection that drops mid-request. Set
at start (`SupabaseFaults` in the emulator's config) and at run time with
`POST /__emulator/faults` (JSON, the same field names; `GET` reads them), as for the Replicate
emulator (`local.emulator_faults`, whose dice and validation this reuses).

`methods`, `skip` and `times` aim the faults at one request of a sequence (the third PATCH of a
TUS upload, say), so a test is exact without relying on chance; rates use seeded dice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from typing import Annotated, Literal

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, JsonValue
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from local.emulator_faults import Dice, Rate, Seconds, changed, faults_router

CONTROL_PREFIX = "/__emulator/"
Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class SupabaseFaults(BaseModel):
    """Rates are probabilities in [0, 1], rolled once per request that the faults aim at: under
    `path_prefix`, with a method in `methods`, past the first `skip`, within `times` (the
    emulator's own /__emulator/ routes are never faulted)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    error_rate: Rate = 0.0
    """Share of requests answered `error_status` with the service's JSON error (PostgREST's
    PGRST000, Storage's InternalError, GoTrue's unexpected_failure)."""
    error_status: Annotated[int, Field(ge=500, le=599)] = 503
    gateway_error_rate: Rate = 0.0
    """Share of requests answered by the gateway's HTML error page (not JSON at all)."""
    gateway_status: Literal[502, 504] = 502
    drop_rate: Rate = 0.0
    """Share of requests whose connection drops: the service reads about half of the request's
    body (what it keeps of it stays, as a TUS server keeps a partial chunk), the client gets a
    status line and nothing more."""
    latency_s: Seconds = 0.0
    """Sleep before handling each request aimed at."""
    path_prefix: str = "/"
    """Only requests under this path are aimed at (e.g. `/rest/v1/rpc/`)."""
    methods: frozenset[Method] = frozenset()
    """Only requests with these HTTP methods (e.g. `["PATCH"]`); empty: every method."""
    skip: Annotated[int, Field(ge=0)] = 0
    """Requests aimed at that pass untouched before the faults start."""
    times: Annotated[int, Field(ge=0)] | None = None
    """Requests that get the faults after `skip`; None: every one."""


class Dropped(Exception):
    """Raised after the headers went out: uvicorn then closes the connection mid-answer."""


class FaultState:
    """The current knobs, their dice (one sequence per emulator, reproducible by seed) and the
    `skip`/`times` countdowns (restarted whenever the knobs change)."""

    def __init__(self, faults: SupabaseFaults | None = None, seed: int | None = 0) -> None:
        faults = faults or SupabaseFaults()
        self.initial = faults
        self.dice = Dice(seed)
        self.faults = faults

    @property
    def faults(self) -> SupabaseFaults:
        return self._faults

    @faults.setter
    def faults(self, faults: SupabaseFaults) -> None:
        self._faults = faults
        self._skip, self._times = faults.skip, faults.times

    def change(self, changes: Mapping[str, object]) -> SupabaseFaults:
        """Apply `changes` (validated: a bad value is a 422 naming the knob, nothing changes)."""
        self.faults = changed(self.faults, changes)
        return self.faults

    def reset(self) -> None:
        self.faults = self.initial
        self.dice.reset()

    def aimed_at(self, method: str, path: str) -> bool:
        """True if this request gets the faults (and counts it down)."""
        faults = self._faults
        if path.startswith(CONTROL_PREFIX) or not path.startswith(faults.path_prefix):
            return False
        if faults.methods and method not in faults.methods:
            return False
        if self._skip > 0:
            self._skip -= 1
            return False
        if self._times is None:
            return True
        if self._times <= 0:
            return False
        self._times -= 1
        return True


def control_router(state: FaultState) -> APIRouter:
    """`GET/POST /__emulator/faults` and `POST /__emulator/reset`: unauthenticated, as the
    emulator only listens on loopback."""
    router = faults_router(state)

    @router.post("/__emulator/reset", status_code=204)
    async def reset() -> Response:
        state.reset()
        return Response(status_code=204)

    return router


_GATEWAY_PAGE = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    "</body>\r\n</html>\r\n"
)
_REASONS = {502: "Bad Gateway", 504: "Gateway Time-out"}


def service_error(path: str, status: int) -> dict[str, JsonValue]:
    """The 5xx body of the service behind `path`, in that service's own shape."""
    if path.startswith("/storage/"):
        return {
            "statusCode": str(status),
            "code": "InternalError",
            "error": "internal",
            "message": "emulated fault",
        }
    if path.startswith("/auth/"):
        return {"code": status, "error_code": "unexpected_failure", "msg": "emulated fault"}
    return {
        "code": "PGRST000",
        "message": "Could not connect with the database due to an incorrect "
        "db-uri or due to the PostgreSQL service not running.",
        "details": "emulated fault",
        "hint": None,
    }


class FaultMiddleware:
    """Pure ASGI middleware (streams untouched) that plays the configured faults."""

    def __init__(self, app: ASGIApp, state: FaultState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not self.state.aimed_at(str(scope["method"]), path):
            await self.app(scope, receive, send)
            return
        faults, dice = self.state.faults, self.state.dice
        if faults.latency_s:
            await asyncio.sleep(faults.latency_s)
        if dice.roll(faults.drop_rate):
            await self._drop(scope, receive)
            await send(_start(200, "application/json", 1024))
            raise Dropped(f"emulated dropped connection on {path}")
        if dice.roll(faults.gateway_error_rate):
            status = faults.gateway_status
            page = _GATEWAY_PAGE.format(status=status, reason=_REASONS[status]).encode()
            await _answer(send, status, "text/html", page)
            return
        if dice.roll(faults.error_rate):
            body = json.dumps(service_error(path, faults.error_status)).encode()
            await _answer(send, faults.error_status, "application/json; charset=utf-8", body)
            return
        await self.app(scope, receive, send)

    async def _drop(self, scope: Scope, receive: Receive) -> None:
        """Let the service read about half of the request's body, then go away: the service sees
        a client that disconnected (whatever it raises about that, nobody hears), and keeps what
        it keeps of the bytes it got. A request without a body never reaches the service."""
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        half = int(declared) // 2 if declared.isdigit() else 0
        if not half:
            return
        received = 0

        async def cut_receive() -> Message:
            nonlocal received
            if received >= half:
                return {"type": "http.disconnect"}
            message = await receive()
            received += len(message.get("body", b""))
            if received > half:
                excess = received - half
                message = {**message, "body": message["body"][:-excess], "more_body": True}
                received = half
            return message

        async def unheard(_: Message) -> None:
            return None

        with contextlib.suppress(Exception):
            await self.app(scope, cut_receive, unheard)


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
