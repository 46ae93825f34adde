"""The app factory every endpoint uses: errors, CORS, request ids, body limits, health.

    app = create_app(router, open_services=wiring.status)        # one endpoint group (Modal)
    app = create_app(r1, r2, open_services=wiring.every_group)    # the local dev server

One handler maps the whole AppError family to JSON (`detail`, `code`, helpful fields); request
validation errors become a 422 with a readable string `detail`; anything unexpected is a 500 with
no internals in the body and the traceback in the log.
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from inspect import signature
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.core.catalog import load_catalog
from shared.core.config import Settings, get_settings
from shared.core.errors import AppError, InvalidInput, JsonValue, PayloadTooLarge
from shared.core.startup import collector_paused
from shared.web.lanes import ExpressLanes, Lane
from shared.web.openapi import truthful_openapi
from shared.web.registry import Registry

# Opens what an app's handlers use, from settings (a builder of shared.wiring), and closes it.
ServicesOpener = Callable[[Settings], AbstractAsyncContextManager[Registry]]

log = logging.getLogger(__name__)
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
WEBHOOK_PATHS = ("/api/webhooks/",)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdFilter(logging.Filter):
    """Stamps every log record with the current request id (and a blank generation id)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        if not hasattr(record, "generation_id"):
            record.generation_id = "-"
        return True


def with_request_ids(handler: logging.Handler) -> logging.Handler:
    """`handler`, stamping and printing each line's request id and generation id."""
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s req=%(request_id)s gen=%(generation_id)s "
            "%(message)s"
        )
    )
    return handler


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if any(isinstance(f, RequestIdFilter) for h in root.handlers for f in h.filters):
        return
    root.addHandler(with_request_ids(logging.StreamHandler()))
    root.setLevel(level.upper())


class RequestContextMiddleware:
    """Request ids (X-Request-ID in, or a new one; echoed back) and the request body limit.

    The limit is enforced on the bytes actually received, not only on Content-Length, so a
    chunked upload cannot stream past it. `limit_for(path)` picks the limit per route.
    """

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        incoming = headers.get("x-request-id", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        limit = self.limit_for(scope["path"])

        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            declared = headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                await _too_large(limit, request_id)(scope, receive, send_with_id)
                return
            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        raise PayloadTooLarge(_too_large_detail(limit), limit_bytes=limit)
                return message

            await self.app(scope, limited_receive, send_with_id)
        except Exception:  # the last line of defence: log it, answer a clean 500
            log.exception("unhandled error")
            if not started:
                await error_response(AppError())(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


def _too_large_detail(limit: int) -> str:
    return f"The request body is larger than {_human(limit)}."


def _too_large(limit: int, request_id: str) -> JSONResponse:
    err = PayloadTooLarge(_too_large_detail(limit), limit_bytes=limit)
    return JSONResponse({**err.body(), "request_id": request_id}, status_code=err.status)


def _human(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB" if n >= 1024 * 1024 else f"{n // 1024} KB"


def framework_error(exc: StarletteHTTPException) -> AppError:
    """An error the framework raised itself, in our shape. A body it could not parse at all
    is the same 422 as one that does not validate."""
    if exc.status_code == 400:
        return InvalidInput("The request body could not be parsed.")
    error = AppError(str(exc.detail), headers=dict(exc.headers or {}))
    error.status = exc.status_code  # type: ignore[misc]
    error.code = _FRAMEWORK_CODES.get(exc.status_code, "http_error")  # type: ignore[misc]
    return error


def error_response(exc: AppError) -> JSONResponse:
    body: dict[str, JsonValue] = {**exc.body(), "request_id": request_id_var.get()}
    return JSONResponse(body, status_code=exc.status, headers=exc.headers or None)


def app_error_response(exc: AppError) -> JSONResponse:
    """A handler's AppError, logged when it is ours (5xx), answered in our shape."""
    if exc.status == 500:
        log.error("request failed: %s (%s)", exc.detail, exc.code, exc_info=exc)
    elif exc.status > 500:
        log.warning("request failed: %s (%s)", exc.detail, exc.code)
    return error_response(exc)


_FRAMEWORK_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _validation_detail(exc: RequestValidationError) -> tuple[str, list[dict[str, str]]]:
    fields: list[dict[str, str]] = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "header", "path")]
        message = str(err.get("msg", "invalid"))
        if err.get("type") == "json_invalid":
            return "The request body is not valid JSON.", [{"field": "body", "message": message}]
        if err.get("type") == "extra_forbidden":
            message = "unknown field"
        fields.append({"field": ".".join(loc) or "body", "message": message})
    detail = "; ".join(f"{f['field']}: {f['message']}" for f in fields) or "Invalid request."
    return detail, fields


def _telemetry(settings: Settings) -> dict[str, Any]:
    """FastAPI's native telemetry off unless FASTAPI_TELEMETRY is set (see Settings); versions
    without it (before 0.145) take no such argument."""
    if settings.fastapi_telemetry or "telemetry" not in signature(FastAPI).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


def create_app(
    *routers: APIRouter,
    open_services: ServicesOpener,
    settings: Settings | None = None,
    title: str = "Wan video generation API",
    upload_paths: Sequence[str] = ("/api/generation/image-to-video",),
    lanes: Sequence[Lane] = (),
) -> FastAPI:
    """A FastAPI app serving `routers` (and `lanes`, shared.web.lanes), with what they use
    opened at startup.

    `open_services(settings)` builds it when the app starts (a missing setting fails the start
    with its name) and closes it, in reverse order, at shutdown.
    """
    cfg = settings or get_settings()
    configure_logging(cfg.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            with collector_paused():  # a container's start: see shared.core.startup
                app.state.services = await stack.enter_async_context(open_services(cfg))
            yield

    app = FastAPI(
        title=title, lifespan=lifespan, docs_url="/docs", redoc_url=None, **_telemetry(cfg)
    )

    @app.exception_handler(AppError)
    async def on_app_error(_: Request, exc: AppError) -> JSONResponse:
        return app_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail, fields = _validation_detail(exc)
        return error_response(InvalidInput(detail, errors=list(fields)))  # type: ignore[arg-type]

    @app.exception_handler(StarletteHTTPException)
    async def on_framework_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # The framework's own refusals (unknown route, wrong method, a multipart limit) in our
        # shape too: a client reads `detail` and `code` from every error.
        return error_response(framework_error(exc))

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    for router in routers:
        app.include_router(router)
    app.openapi = truthful_openapi(app, load_catalog(cfg.catalog_overrides))  # type: ignore[method-assign]

    uploads = tuple(upload_paths)

    def limit_for(path: str) -> int:
        if path.startswith(uploads):
            return cfg.max_upload_bytes + 64 * 1024  # the image plus the multipart envelope
        if path.startswith(WEBHOOK_PATHS):
            return cfg.max_webhook_bytes
        return cfg.max_body_bytes

    app.add_middleware(RequestContextMiddleware, limit_for=limit_for)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=cfg.cors_origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
        expose_headers=["X-Request-ID", "Retry-After"],
        max_age=600,
    )
    if lanes:  # outermost, each lane inside the same middleware as the routes (lanes.py)
        build_routed = app.build_middleware_stack

        def build_middleware_stack() -> ASGIApp:
            return ExpressLanes(
                build_routed(),
                lanes=lanes,
                middleware=app.user_middleware,
                on_error=app_error_response,
            )

        app.build_middleware_stack = build_middleware_stack  # type: ignore[method-assign]
    return app
