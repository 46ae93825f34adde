"""Express lanes: a route so hot that the framework's layers cost more CPU than the work behind
it (every open tab polls GET status: bench/status_reads.py) is answered by a plain ASGI handler.

`ExpressLanes` is the app's outermost layer when it has lanes: a request a lane matches goes
through the app's own middleware (request ids, the body limit, CORS, the last-resort 500: the
same `Middleware` list every route runs inside, so the two cannot differ) around the lane's
answer, and skips the rest: FastAPI's error, telemetry and body-limit layers, routing and
per-request dependency solving. Anything else goes to the framework's whole stack.

A lane matches one method and either a whole path or a path of one parameter (`path` + a
segment without a slash, as `{param}` matches in the router). Its answer function is also what
the route declared for the OpenAPI document calls, so the two answer alike. The webhook is the
other lane: Replicate posts a `logs` update about twice a second per running prediction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.core.errors import AppError
from shared.web.registry import Registry

# (the app's services, the request, its path parameter or "") -> the response
Answer = Callable[[Registry, Request, str], Awaitable[Response]]
_MATCHED = "express_lane"  # the scope key carrying the matched lane and its parameter


@dataclass(frozen=True)
class Lane:
    method: str
    # The whole path, or with `param` the path up to its one parameter, e.g.
    # "/api/generation/status/".
    path: str
    answer: Answer
    param: bool = True

    def match(self, method: str, path: str) -> str | None:
        """The path parameter ("" for a lane without one) if the request is this lane's."""
        if method != self.method:
            return None
        if not self.param:
            return "" if path == self.path else None
        if not path.startswith(self.path):
            return None
        rest = path[len(self.path) :]
        return rest if rest and "/" not in rest else None


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
        method, path = scope["method"], scope["path"]
        for lane in self.lanes:
            param = lane.match(method, path)
            if param is not None:
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
            response = await lane.answer(services, Request(scope, receive), param)
        except AppError as exc:
            response = self.on_error(exc)
        await response(scope, receive, send)
