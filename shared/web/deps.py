"""FastAPI dependencies as `Annotated` aliases, so handlers read like plain signatures."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Request
from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException

from shared.core.errors import InvalidInput, PermissionDenied, UnsupportedMediaType
from shared.web.auth import Authenticator, CurrentUser
from shared.web.registry import Registry, provided

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


async def authenticated(registry: Registry, authorization: str | None) -> CurrentUser:
    """The caller behind an Authorization header, by the app's authenticator (for handlers
    that read their request themselves, as the express lanes do)."""
    return await provided(registry, Authenticator).authenticate(authorization)


async def current_user(request: Request) -> CurrentUser:
    return await authenticated(request.app.state.services, request.headers.get("authorization"))


User = Annotated[CurrentUser, Depends(current_user)]


async def current_admin(user: User) -> CurrentUser:
    """An operator: the token's app_metadata.role is "admin" (403 for everyone else)."""
    if not user.is_admin:
        raise PermissionDenied("Only an operator (app_metadata.role = admin) may see this.")
    return user


Admin = Annotated[CurrentUser, Depends(current_admin)]


async def idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Replaying a create with the same key returns the same generation.",
            json_schema_extra={"pattern": "^[!-~]{1,255}$"},
        ),
    ] = None,
) -> str | None:
    """The optional Idempotency-Key: 1-255 visible ASCII characters."""
    if key is None:
        return None
    if not _KEY.match(key):
        raise InvalidInput(
            "Idempotency-Key must be 1-255 visible ASCII characters.", field="Idempotency-Key"
        )
    return key


IdempotencyKey = Annotated[str | None, Depends(idempotency_key)]


async def multipart_form(request: Request) -> AsyncIterator[FormData]:
    """The request's form, parsed with limits (files spool to disk past 1 MB); a body that is
    not a form at all (JSON, raw bytes) is a 415. A url-encoded form parses, and then simply
    has no image (422)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith(
        ("multipart/form-data", "application/x-www-form-urlencoded")
    ):
        raise UnsupportedMediaType(
            "Send the image as multipart/form-data (fields: image, prompt, model, resolution)."
        )
    try:
        form = await request.form(max_files=1, max_fields=16, max_part_size=64 * 1024)
    except MultiPartException as exc:
        raise InvalidInput(f"The multipart body is malformed: {exc.message}") from exc
    try:
        yield form
    finally:
        await form.close()


Form = Annotated[FormData, Depends(multipart_form)]
