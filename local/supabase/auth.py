"""Emulated Supabase Auth (GoTrue): the parts our code and the local stack use.

    GET    /auth/v1/.well-known/jwks.json   the project's public signing keys (ES256), or an
                                            empty set for a project still on the legacy secret
    DELETE /auth/v1/admin/users/{id}        delete a user from auth.users (service-role JWT);
                                            what cascades from there is our schema's business

Errors in GoTrue's shape: `{"code": <status>, "error_code": "...", "msg": "..."}`.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from local.supabase.context import JWKS_PATH, EmulatorContext, JwtRejected, bearer_token

ADMIN_ROLES = frozenset({"service_role", "supabase_admin"})


def _error(status: int, error_code: str, msg: str) -> JSONResponse:
    return JSONResponse({"code": status, "error_code": error_code, "msg": msg}, status)


def router(ctx: EmulatorContext) -> APIRouter:
    api = APIRouter()

    @api.get(JWKS_PATH)
    async def jwks() -> JSONResponse:
        # Public and cacheable, as Supabase serves it (clients cache it for minutes).
        return JSONResponse(ctx.keys.jwks(), headers={"Cache-Control": "public, max-age=600"})

    @api.delete("/auth/v1/admin/users/{user_id}")
    async def delete_user(user_id: str, request: Request) -> JSONResponse:
        token = bearer_token(request.headers.get("authorization"))
        if token is None:
            return _error(401, "no_authorization", "This endpoint requires a Bearer token")
        try:
            claims = ctx.keys.verify(token)
        except JwtRejected as exc:
            return _error(401, "bad_jwt", f"invalid JWT: {exc.message}")
        if claims.get("role") not in ADMIN_ROLES:
            return _error(403, "not_admin", "User not allowed")
        try:
            key = uuid.UUID(user_id)
        except ValueError:
            return _error(400, "validation_failed", "user_id must be an UUID")
        import psycopg

        try:
            async with ctx.db().connection() as conn, conn.transaction():
                cur = await conn.execute(
                    "delete from auth.users where id = %s returning id", (key,)
                )
                deleted = await cur.fetchone()
        except psycopg.Error as exc:  # e.g. a foreign key of ours that refuses the cascade
            return _error(500, "unexpected_failure", f"Database error deleting user: {exc}")
        if deleted is None:
            return _error(404, "user_not_found", "User not found")
        return JSONResponse({})

    return api
