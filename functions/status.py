"""GET /api/generation/status/{id}: the owner's view of one generation."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, FastAPI

from shared.deps import ServicesDep, User
from shared.errors import NotFound
from shared.http import create_app as _create_app
from shared.schemas import GenerationOut, error_responses

router = APIRouter()


@router.get("/api/generation/status/{generation_id}", responses=error_responses(401, 404))
async def generation_status(generation_id: str, user: User, services: ServicesDep) -> GenerationOut:
    """The generation, if it is the caller's (404 for anyone else, and for malformed ids)."""
    try:
        gid = uuid.UUID(generation_id)
    except ValueError:
        raise NotFound("Generation not found.") from None
    gen = await services.rpc.get_generation(user.id, gid)
    return GenerationOut.from_generation(gen)


def create_app() -> FastAPI:
    return _create_app(router)
