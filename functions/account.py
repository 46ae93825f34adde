"""Deleting: one generation's media, or the whole account.

DELETE /api/generation/{id}   a finished generation: stored video and input image removed, prompt
                              cleared; afterwards it is not found; its ledger rows stay
DELETE /api/account           body {"confirm": true}: stops what runs, removes every file and
                              prompt, deletes the sign-in account; purchases and ledger stay
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Response, status
from pydantic import BaseModel, ConfigDict

from shared import wiring
from shared.core.config import Settings
from shared.web.answers import parse_generation_id
from shared.web.app import create_app as _create_app
from shared.web.deps import User
from shared.web.registry import services_of
from shared.web.schemas import error_responses
from shared.wiring import AccountServices

router = APIRouter()
Services = Annotated[AccountServices, Depends(services_of(AccountServices))]


class DeleteAccountRequest(BaseModel):
    """The caller must say it twice: a stray DELETE never erases an account."""

    model_config = ConfigDict(extra="forbid")

    confirm: Literal[True]


@router.delete(
    "/api/generation/{generation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 404, 409),
)
async def delete_generation(generation_id: str, user: User, services: Services) -> Response:
    """Delete a finished generation's video, input image and prompt (409 while it runs: cancel
    it first)."""
    await services.remover.delete_generation(user.id, parse_generation_id(generation_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/api/account",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 404, 422, 503),
)
async def delete_account(body: DeleteAccountRequest, user: User, services: Services) -> Response:
    """Delete the caller's account and everything personal in it (send {"confirm": true})."""
    del body  # its only field is checked by validation
    await services.remover.delete_account(user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def create_app(settings: Settings | None = None) -> FastAPI:
    return _create_app(router, open_services=wiring.account, settings=settings)
