"""GET /api/generation/status/{id}: the owner's view of one generation.

If it is still running and nothing was heard for a while, this asks the provider once (claimed
atomically, capped): the polling fallback for lost webhooks, bounded.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Response

from shared import wiring
from shared.core.config import Settings
from shared.core.errors import NotFound
from shared.web.app import create_app as _create_app
from shared.web.deps import User
from shared.web.registry import services_of
from shared.web.schemas import GenerationOut, error_responses
from shared.wiring import StatusServices

router = APIRouter()
Services = Annotated[StatusServices, Depends(services_of(StatusServices))]


def parse_generation_id(raw: str) -> uuid.UUID:
    """A path id; anything malformed is simply not found (no hint about what exists)."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound("Generation not found.") from None


@router.get(
    "/api/generation/status/{generation_id}",
    response_model=GenerationOut,
    responses=error_responses(401, 404),
)
async def generation_status(generation_id: str, user: User, services: Services) -> Response:
    """The generation, if it is the caller's (404 for anyone else, and for malformed ids)."""
    gen = await services.lifecycle.read(user.id, parse_generation_id(generation_id))
    out = GenerationOut.from_generation(gen, video_url=await services.links.view_url(gen))
    # Every open tab polls this: the model is built (and validated) once, and rendered
    # directly rather than validated again as the response model.
    return Response(out.model_dump_json(), media_type="application/json")


def create_app(settings: Settings | None = None) -> FastAPI:
    return _create_app(router, open_services=wiring.status, settings=settings)
