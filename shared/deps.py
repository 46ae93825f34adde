"""FastAPI dependencies as `Annotated` aliases, so handlers read like plain signatures."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header, Request

from shared.auth import CurrentUser
from shared.errors import InvalidInput
from shared.services import Services

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def current_user(request: Request, services: ServicesDep) -> CurrentUser:
    return await services.authenticator.authenticate(request.headers.get("authorization"))


User = Annotated[CurrentUser, Depends(current_user)]


def idempotency_key(
    key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
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
