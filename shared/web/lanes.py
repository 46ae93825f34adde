"""Express lanes: a route so hot that the framework's layers cost more CPU than the work behind
it (every open tab polls GET status: bench/status_reads.py) is answered by a plain ASGI handler.

`ExpressLanes` is the app's outermost layer when it has lanes: a request a lane matches goes
through the app's own middleware (request ids, the body limit, CORS, the last-resort 500: the
same `Middleware` list every route runs inside, so the two cannot differ) around the lane's
answer, and skips the rest: FastAPI's error, telemetry and body-limit layers, routing and
per-request dependency solving. Anything else goes to the framework's whole stack.

A lane matches one method and a path of one parameter (`prefix` + a segment without a slash,
as `{param}` matches in the router). Its answer function is also what the route declared for the
OpenAPI document calls, so the two answer alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.core.errors import AppError
from shared.web.registry import Registry

# (the app's services, the path parameter, the request's headers) -> the response
Answer = Callable[[Registry, str, Headers], Awaitable[Response]]
_MATCHED = "express_lane"  # the scope key carrying the matched lane and its parameter


@dataclass(frozen=True)
class Lane:
    method: str
    prefix: str  # the path up to its one parameter, e.g. "/api/generation/status/"
    answer: Answer


class ExpressLanes:
    """ASGI: requests a lane matches are answered by it inside `middleware` (outermost first,
    as Starlette lists an app's user middleware); errors are answered as the routed handlers'
    are (`on_error`, the app's AppError handler). Everything else goes to `routed`."""

    def __init__(
        self,
        routed: ASGIApp,
        *,
        lanes: Sequence[Lane],
        middleware: Sequence[Middleware],
        on_error: Callable[[AppError], Response],
    ) -> None:
        self.routed = routed
        self.lanes = tuple(lanes)
        self.on_error = on_error
        laned: ASGIApp = self._answer
        for cls, args, kwargs in reversed(middleware):
            laned = cls(laned, *args, **kwargs)
        self.laned = laned

    def _match(self, scope: Scope) -> tuple[Lane, str] | None:
        for lane in self.lanes:
            if scope["method"] != lane.method or not scope["path"].startswith(lane.prefix):
                continue
            param = scope["path"][len(lane.prefix) :]
            if not param or "/" in param:
                return None
            return lane, param
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        matched = self._match(scope) if scope["type"] == "http" else None
        if matched is None:
            await self.routed(scope, receive, send)
            return
        scope[_MATCHED] = matched
        await self.laned(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane, param = scope[_MATCHED]
        try:
            services = scope["app"].state.services
            response = await lane.answer(services, param, Headers(scope=scope))
        except AppError as exc:
            response = self.on_error(exc)
        await response(scope, receive, send)
