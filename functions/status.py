"""GET /api/generation/status/{id}: the owner's view of one generation.

If it is still running and nothing was heard for a while, this asks the provider once (claimed
atomically, capped): the polling fallback for lost webhooks, bounded.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, FastAPI

from shared.core.errors import NotFound
from shared.web.app import create_app as _create_app
from shared.web.deps import ServicesDep, User
from shared.web.schemas import GenerationOut, error_responses

router = APIRouter()


def parse_generation_id(raw: str) -> uuid.UUID:
    """A path id; anything malformed is simply not found (no hint about what exists)."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound("Generation not found.") from None


@router.get("/api/generation/status/{generation_id}", responses=error_responses(401, 404, 503))
async def generation_status(generation_id: str, user: User, services: ServicesDep) -> GenerationOut:
    """The generation, if it is the caller's (404 for anyone else, and for malformed ids)."""
    gen = await services.lifecycle.read(user.id, parse_generation_id(generation_id))
    return GenerationOut.from_generation(gen, video_url=await services.keeper.view_url(gen))


def create_app() -> FastAPI:
    return _create_app(router)
