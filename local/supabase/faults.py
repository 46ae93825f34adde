"""Fault knobs for the Supabase emulator, as an ASGI middleware around any of its parts.

The same faults a real deployment shows: a 5xx in the service's own JSON, a gateway's HTML
502/504 (the proxy answered, not the service), added latency, and a connection dropped in the
middle of a request. `times` and `skip` aim a fault at one request of a sequence (the third
PATCH of an upload, say), so a test is exact without relying on chance; rates use seeded dice.

Minimal version written for Storage (H5b); the emulator's owner may fold it into a wider one.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_GATEWAY_PAGE = (
    "<html><head><title>{status} {reason}</title></head><body>"
    "<center><h1>{status} {reason}</h1></center><hr><center>cloudflare</center></body></html>"
)
_REASONS = {502: "Bad Gateway", 504: "Gateway Time-out"}


class ConnectionDropped(Exception):
    """Raised after a partial response so the server closes the socket mid-request."""


@dataclass
class Faults:
    """What goes wrong, for requests whose method is in `methods` (all when empty)."""

    error_status: int | None = None
    """Answer this status (5xx) with the service's JSON error body."""
    gateway_status: int | None = None
    """Answer 502 or 504 with a proxy's HTML page."""
    latency_s: float = 0.0
    drop_rate: float = 0.0
    """Share of requests whose connection is dropped after half of their body was read."""
    methods: frozenset[str] = frozenset()
    skip: int = 0
    """Matching requests let through untouched before the faults start."""
    times: int | None = None
    """Matching requests that get the faults; None: every one until `reset()`."""
    seed: int | None = 0
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 - fault dice, not cryptography

    def reset(self) -> None:
        self.error_status = self.gateway_status = None
        self.latency_s = self.drop_rate = 0.0
        self.methods, self.skip, self.times = frozenset(), 0, None

    def _claim(self, method: str) -> bool:
        """True if this request gets the faults (counts it down)."""
        if self.methods and method not in self.methods:
            return False
        if self.skip > 0:
            self.skip -= 1
            return False
        if self.times is None:
            return True
        if self.times <= 0:
            return False
        self.times -= 1
        return True


class FaultInjector:
    """ASGI middleware applying `faults` to every HTTP request that reaches `app`."""

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        faults = self.faults
        if scope["type"] != "http" or not faults._claim(scope["method"]):
            await self.app(scope, receive, send)
            return
        if faults.latency_s:
            await asyncio.sleep(faults.latency_s)
        if faults.drop_rate and faults._rng.random() < faults.drop_rate:
            await self._drop(scope, receive, send)
        elif faults.gateway_status is not None:
            status = faults.gateway_status
            page = _GATEWAY_PAGE.format(status=status, reason=_REASONS.get(status, "Error"))
            await _respond(send, status, "text/html", page.encode())
        elif faults.error_status is not None:
            status = faults.error_status
            body = (
                f'{{"statusCode":"{status}","code":"InternalError","error":"internal",'
                '"message":"Injected failure"}'
            )
            await _respond(send, status, "application/json", body.encode())
        else:
            await self.app(scope, receive, send)

    async def _drop(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Let the app read about half of the body, then cut the connection: what the app kept
        of the bytes it got stays (a TUS server keeps a partial chunk), the client gets no
        answer."""
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"0")
        half = int(declared) // 2 if declared.isdigit() else 0
        received = 0

        async def cut_receive() -> Message:
            nonlocal received
            if received >= half and received > 0:
                return {"type": "http.disconnect"}
            message = await receive()
            received += len(message.get("body", b""))
            if received > half > 0:
                excess = received - half
                message = {**message, "body": message["body"][:-excess], "more_body": True}
                received = half
            return message

        async def swallow(_: Message) -> None:
            return None

        if half:
            # The app sees a client that went away; whatever it raises about that, nobody hears.
            with contextlib.suppress(Exception):
                await self.app(scope, cut_receive, swallow)
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]}
        )
        raise ConnectionDropped("fault: connection dropped")


async def _respond(send: Send, status: int, content_type: str, body: bytes) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
