"""The Supabase emulator: one ASGI app serving what a Supabase project serves our code.

    /rest/v1/rpc/{fn}                 PostgREST RPC              (local.supabase.rest)
    /auth/v1/...                      Auth: JWKS, admin users    (local.supabase.auth)
    /storage/v1/...                   Storage, TUS uploads       (local.supabase.storage)

In front of them, as Supabase's gateway: every request under those prefixes but the JWKS and
a signed link's download needs an `apikey` header (or url param) holding the project's anon or
service-role key (401 otherwise). Faults (`local.supabase.faults`) are played before any service
sees a request. Test and operator controls, unauthenticated (the emulator only listens on
loopback):

    GET/POST /__emulator/faults       read / change the fault knobs
    POST     /__emulator/reset        restore the start's knobs and dice

Written from Supabase's, PostgREST's and Storage's documentation; the SQL runs for real in the
database named by the config (never a mock of our own database), Storage's files are on disk.
"""

from __future__ import annotations

import hmac
import importlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from local.supabase.context import (
    JWKS_PATH,
    EmulatorContext,
    ProjectKeys,
    SupabaseEmulatorConfig,
)
from local.supabase.faults import FaultMiddleware, FaultState, control_router

# The services, by module under local.supabase: `router(ctx) -> APIRouter`, included at the
# root; or, with a mount path, `mounted(ctx) -> ASGIApp | None`, an app of its own served there.
SERVICES: tuple[tuple[str, str | None], ...] = (
    ("rest", None),
    ("auth", None),
    ("storage", "/storage/v1"),
)
_KEYED_PREFIXES = ("/rest/v1/", "/auth/v1/", "/storage/v1/")
# A signed link is the whole authorization of its download: no apikey, as on Supabase.
_SIGNED_DOWNLOAD = "/storage/v1/object/sign/"


def _needs_apikey(method: str, path: str) -> bool:
    if not path.startswith(_KEYED_PREFIXES) or path == JWKS_PATH:
        return False
    return not (method in ("GET", "HEAD") and path.startswith(_SIGNED_DOWNLOAD))


def create_app(config: SupabaseEmulatorConfig) -> FastAPI:
    """The emulator; its database pool opens with the app's lifespan."""
    ctx = EmulatorContext(
        config=config,
        keys=ProjectKeys.from_config(config),
        faults=FaultState(config.faults, config.seed),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        from psycopg_pool import AsyncConnectionPool

        pool: AsyncConnectionPool = AsyncConnectionPool(
            config.database_url, min_size=1, max_size=10, open=False, timeout=10.0
        )
        await pool.open(wait=True, timeout=10.0)
        ctx.pool = pool
        try:
            yield
        finally:
            ctx.pool = None
            await pool.close()

    app = FastAPI(title="Supabase emulator", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.ctx = ctx
    for name, mount_path in SERVICES:
        module = importlib.import_module(f"local.supabase.{name}")
        if mount_path is None:
            app.include_router(module.router(ctx))
        elif (service := module.mounted(ctx)) is not None:
            app.mount(mount_path, service)
    app.include_router(control_router(ctx.faults))

    api_keys = (config.anon_key.encode(), config.service_role_key.encode())

    @app.middleware("http")
    async def gateway(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        if _needs_apikey(request.method, path):
            key = request.headers.get("apikey") or request.query_params.get("apikey")
            if not key:
                return JSONResponse(
                    {
                        "message": "No API key found in request",
                        "hint": "No `apikey` request header or url param was found.",
                    },
                    401,
                )
            if not any(hmac.compare_digest(key.encode(), k) for k in api_keys):
                return JSONResponse(
                    {
                        "message": "Invalid API key",
                        "hint": "Double check your Supabase `anon` or `service_role` API key.",
                    },
                    401,
                )
        return await call_next(request)

    # Added last: the outermost layer, so faults hit before the gateway, as a broken proxy would.
    app.add_middleware(FaultMiddleware, state=ctx.faults)
    return app
