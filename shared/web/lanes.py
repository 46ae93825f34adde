"""Express lanes: a route so hot that FastAPI's routing and per-request dependency solving cost
more CPU than the work behind it (every open tab polls GET status: bench/status_reads.py) is
answered by a plain ASGI handler placed inside the same middleware as every other route (request
ids, the body limit, CORS, the last-resort 500) but before the router.

A lane matches one method and a path of one parameter (`prefix` + a segment without a slash,
as `{param}` matches in the router); anything else goes on to the router. Its answer function is
also what the route declared for the OpenAPI document calls, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.core.errors import AppError
from shared.web.registry import Registry

# (the app's services, the path parameter, the request's headers) -> the response
Answer = Callable[[Registry, str, Headers], Awaitable[Response]]


@dataclass(frozen=True)
class Lane:
    method: str
    prefix: str  # the path up to its one parameter, e.g. "/api/generation/status/"
    answer: Answer


class ExpressLanes:
    """ASGI middleware: requests a lane matches are answered by it; errors are answered as the
    routed handlers' are (`on_error`, the app's AppError handler)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        lanes: Sequence[Lane],
        on_error: Callable[[AppError], Response],
    ) -> None:
        self.app = app
        self.lanes = tuple(lanes)
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for lane in self.lanes:
                if scope["method"] != lane.method or not scope["path"].startswith(lane.prefix):
                    continue
                param = scope["path"][len(lane.prefix) :]
                if not param or "/" in param:
                    break
                try:
                    services = scope["app"].state.services
                    response = await lane.answer(services, param, Headers(scope=scope))
                except AppError as exc:
                    response = self.on_error(exc)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
