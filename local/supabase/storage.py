"""The Supabase emulator's Storage API: what our code and `wanctl doctor` call, nothing more.

Written from Supabase Storage's API (storage-api) and what supabase-py's storage3 sends:

    GET    /bucket/{id}                        a bucket (public flag, file_size_limit)
    POST   /bucket                             create one {id, name, public, file_size_limit}
    POST   /object/{bucket}/{path}             upload (raw body or multipart), `x-upsert`
    PUT    /object/{bucket}/{path}             replace
    GET    /object/{bucket}/{path}             download (authenticated)
    GET    /object/info/{bucket}/{path}        metadata; 404 `not_found` (storage3's exists())
    DELETE /object/{bucket}                    remove {"prefixes": [names]}
    POST   /object/list/{bucket}               one folder's entries {prefix, limit, offset}
    POST   /object/sign/{bucket}/{path}        {"expiresIn"} -> {"signedURL": "/object/sign/..."}
    GET    /object/sign/{bucket}/{path}?token= the file, while the token lives (Range works)
    /upload/resumable[/{id}]                   TUS 1.0.0 (local.supabase.tus)

Every call but a signed GET needs the service role (a Bearer JWT the project signed, with
`role: service_role`), as a private bucket under RLS does for our server. Errors have
Storage's shape `{"statusCode": "413", "code", "error", "message"}`. Files live under
`root/<bucket>/<path>`; an upload is written to a temporary file renamed into place.

Mounted at /storage/v1 by the emulator app (`mounted`, the buckets of its config created at
start); `standalone_storage_app` does the same alone, with its own fault knobs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp

from local.supabase.context import EmulatorContext, JwtRejected, ProjectKeys, bearer_token
from local.supabase.faults import FaultMiddleware, FaultState, control_router
from local.supabase.storage_state import Bucket, StorageError, StorageState
from local.supabase.tus import tus_router
from shared.storage.port import check_path

# Signed links carry an HS256 JWT made with the project's secret, as Supabase Storage's do.
_SIGN_ALGORITHM = "HS256"
PREFIX = "/storage/v1"


def mounted(ctx: EmulatorContext) -> ASGIApp | None:
    """The emulator's Storage (local.supabase.app mounts it at /storage/v1): the config's
    buckets, files under its storage_dir; None when it names no folder."""
    config = ctx.config
    if config.storage_dir is None:
        return None
    buckets = tuple(Bucket(name, file_size_limit=size) for name, size in config.buckets.items())
    return create_storage_app(config.storage_dir, config.jwt_secret, keys=ctx.keys, buckets=buckets)


def create_storage_app(
    root_dir: Path,
    jwt_secret: str,
    *,
    keys: ProjectKeys | None = None,
    clock: Callable[[], float] = time.time,
    buckets: tuple[Bucket, ...] = (),
    state: StorageState | None = None,
) -> FastAPI:
    """The Storage API rooted at `/` (mount it at /storage/v1), files under `root_dir`.

    Requests are authorized by `keys` (default: the project's legacy secret alone); signed links
    are signed with `jwt_secret`. Pass `state` to look at what it holds (buckets, objects, TUS
    chunk sizes) from outside.
    """
    state = state or StorageState(root_dir, clock=clock)
    verify = keys or ProjectKeys(jwt_secret, None, None)
    for bucket in buckets:
        state.add_bucket(bucket)
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.exception_handler(StorageError)
    async def on_error(_: Request, exc: StorageError) -> JSONResponse:
        return exc.response()

    def service_role(request: Request) -> None:
        _require_service_role(request, verify)

    app.include_router(_signed_router(state, jwt_secret))
    guarded = [Depends(service_role)]
    app.include_router(_bucket_router(state), dependencies=guarded)
    app.include_router(tus_router(state), dependencies=guarded)
    app.include_router(_object_router(state, jwt_secret), dependencies=guarded)
    return app


def standalone_storage_app(
    root_dir: Path,
    jwt_secret: str,
    *,
    clock: Callable[[], float] = time.time,
    faults: FaultState | None = None,
    **options: Any,
) -> tuple[ASGIApp, StorageState]:
    """The Storage API at /storage/v1 of its own server, as the emulator app mounts it; with
    `faults`, every request goes through them (and /__emulator/faults changes them)."""
    state = StorageState(root_dir, clock=clock)
    inner = create_storage_app(root_dir, jwt_secret, state=state, **options)
    if faults is None:
        return Starlette(routes=[Mount(PREFIX, app=inner)]), state
    controls = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    controls.include_router(control_router(faults))
    controls.mount(PREFIX, inner)
    return FaultMiddleware(controls, faults), state


def signed_path(jwt_secret: str, bucket_id: str, key: str, issued_at: int, expires_at: int) -> str:
    """A signed link below /storage/v1, as Storage makes it: the token names the object."""
    claims = {"url": f"{bucket_id}/{key}", "iat": issued_at, "exp": expires_at}
    token = jwt.encode(claims, jwt_secret, algorithm=_SIGN_ALGORITHM)
    return f"/object/sign/{bucket_id}/{key}?token={token}"


def _require_service_role(request: Request, keys: ProjectKeys) -> None:
    token = bearer_token(request.headers.get("authorization"))
    if token is None or not request.headers.get("apikey"):
        raise StorageError(
            400, "Unauthorized", "headers must have required property 'authorization'"
        )
    try:
        claims = keys.verify(token)
    except JwtRejected as exc:
        raise StorageError(400, "InvalidJWT", exc.message) from None
    if claims.get("role") != "service_role":
        raise StorageError(403, "Unauthorized", "new row violates row-level security policy")


def _object_key(path: str) -> str:
    try:
        return check_path(path)
    except ValueError:
        raise StorageError(400, "InvalidKey", f"Invalid key: {path}") from None


def _bucket_router(state: StorageState) -> APIRouter:
    router = APIRouter()

    @router.get("/bucket/{bucket_id}")
    async def get_bucket(bucket_id: str) -> dict[str, Any]:
        return state.bucket(bucket_id).as_json()

    @router.post("/bucket")
    async def create_bucket(request: Request) -> dict[str, str]:
        body = await _json(request)
        bucket_id = str(body.get("id") or body.get("name") or "")
        if not bucket_id:
            raise StorageError(400, "InvalidRequest", "body must have required property 'name'")
        if bucket_id in state.buckets:
            raise StorageError(409, "Duplicate", "The resource already exists")
        limit = body.get("file_size_limit")
        state.add_bucket(
            Bucket(
                id=bucket_id,
                public=bool(body.get("public", False)),
                file_size_limit=int(limit) if limit not in (None, "") else None,
                allowed_mime_types=body.get("allowed_mime_types"),
            )
        )
        return {"name": bucket_id}

    return router


def _object_router(state: StorageState, jwt_secret: str) -> APIRouter:
    router = APIRouter()

    @router.post("/object/sign/{bucket_id}/{path:path}")
    async def sign(bucket_id: str, path: str, request: Request) -> dict[str, str]:
        key = _object_key(path)
        state.object(bucket_id, key)
        try:
            expires_in = int((await _json(request)).get("expiresIn"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise StorageError(400, "InvalidRequest", "expiresIn must be a number") from None
        if expires_in < 1:
            raise StorageError(400, "InvalidRequest", "expiresIn must be >= 1")
        now = int(state.clock())
        return {"signedURL": signed_path(jwt_secret, bucket_id, key, now, now + expires_in)}

    @router.post("/object/list/{bucket_id}")
    async def list_objects(bucket_id: str, request: Request) -> list[dict[str, Any]]:
        body = await _json(request)
        limit, offset = int(body.get("limit", 100)), int(body.get("offset", 0))
        entries = state.list_folder(bucket_id, str(body.get("prefix") or ""))
        return entries[offset : offset + limit]

    @router.get("/object/info/{bucket_id}/{path:path}")
    async def info(bucket_id: str, path: str) -> dict[str, Any]:
        return state.object(bucket_id, _object_key(path)).info()

    @router.delete("/object/{bucket_id}")
    async def remove(bucket_id: str, request: Request) -> list[dict[str, Any]]:
        names = (await _json(request)).get("prefixes")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise StorageError(400, "InvalidRequest", "body must have required property 'prefixes'")
        return state.remove(bucket_id, names)

    @router.api_route("/object/{bucket_id}/{path:path}", methods=["POST", "PUT"])
    async def upload(bucket_id: str, path: str, request: Request) -> dict[str, str]:
        key = _object_key(path)
        upsert = request.method == "PUT" or request.headers.get("x-upsert") == "true"
        content_type = request.headers.get("content-type", "application/octet-stream")
        declared = request.headers.get("content-length", "")
        size = (
            int(declared)
            if declared.isdigit() and not content_type.startswith("multipart/")
            else None
        )
        writer = state.writer(bucket_id, key, upsert=upsert, size=size)
        try:
            if content_type.startswith("multipart/form-data"):
                async with request.form() as form:
                    file = form.get("file")
                    if file is None or isinstance(file, str):
                        raise StorageError(400, "InvalidRequest", "No file in the form")
                    content_type = file.content_type or "application/octet-stream"
                    while block := await file.read(1024 * 1024):
                        await writer.write(block)
            else:
                async for block in request.stream():
                    await writer.write(block)
            meta = await writer.commit(content_type)
        except BaseException:
            writer.discard()
            raise
        return {"Id": meta.id, "Key": f"{bucket_id}/{key}"}

    @router.get("/object/{bucket_id}/{path:path}")
    async def download(bucket_id: str, path: str) -> Response:
        meta = state.object(bucket_id, _object_key(path))
        return FileResponse(meta.file, media_type=meta.content_type)

    return router


def _signed_router(state: StorageState, jwt_secret: str) -> APIRouter:
    router = APIRouter()

    @router.get("/object/sign/{bucket_id}/{path:path}")
    async def signed_download(bucket_id: str, path: str, token: str = "") -> Response:
        try:
            claims = jwt.decode(
                token, jwt_secret, algorithms=[_SIGN_ALGORITHM], options={"verify_exp": False}
            )
        except jwt.PyJWTError:
            raise StorageError(400, "InvalidJWT", "invalid signature") from None
        if claims.get("url") != f"{bucket_id}/{path}":
            raise StorageError(400, "InvalidSignature", "The url do not match the signature")
        expires = claims.get("exp")
        if not isinstance(expires, int) or expires <= state.clock():
            raise StorageError(400, "InvalidJWT", "jwt expired")
        meta = state.object(bucket_id, _object_key(path))
        left = max(0, expires - int(state.clock()))
        return FileResponse(
            meta.file,
            media_type=meta.content_type,
            headers={"Cache-Control": f"private, max-age={left}"},
        )

    return router


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise StorageError(400, "InvalidRequest", "Body is not valid JSON") from None
    if not isinstance(body, dict):
        raise StorageError(400, "InvalidRequest", "Body must be an object")
    return body
