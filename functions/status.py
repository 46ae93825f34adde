"""GET /api/generation/status/{id}: the owner's view of one generation.

If it is still running and nothing was heard for a while, this asks the provider once (claimed
atomically, capped): the polling fallback for lost webhooks, bounded.

Every open tab polls this, so it is the hottest route: the handler takes the bare request and
reads the path, the token and its services itself. FastAPI's per-request dependency solving
(the user, the services, the path parameter) cost more CPU than the database read it wraps
(bench/status_reads.py); the documented signature is the same (`openapi_extra` declares the
path parameter; the 401 makes the bearer token the route's security scheme).
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, FastAPI, Request, Response

from shared import wiring
from shared.core.config import Settings
from shared.core.errors import NotFound
from shared.web.app import create_app as _create_app
from shared.web.deps import current_user
from shared.web.registry import provided
from shared.web.schemas import GenerationOut, error_responses
from shared.wiring import StatusServices

router = APIRouter()

_PATH_PARAMETER = {
    "name": "generation_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "title": "Generation Id"},
}


def parse_generation_id(raw: str) -> uuid.UUID:
    """A path id; anything malformed is simply not found (no hint about what exists)."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound("Generation not found.") from None


@router.get(
    "/api/generation/status/{generation_id}",
    response_model=GenerationOut,
    responses=error_responses(401, 404, 503),
    openapi_extra={"parameters": [_PATH_PARAMETER]},
)
async def generation_status(request: Request) -> Response:
    """The generation, if it is the caller's (404 for anyone else, and for malformed ids)."""
    user = await current_user(request)
    services = provided(request.app.state.services, StatusServices)
    generation_id = parse_generation_id(request.path_params["generation_id"])
    gen = await services.lifecycle.read(user.id, generation_id)
    out = GenerationOut.from_generation(gen, video_url=await services.links.view_url(gen))
    # Built (and validated) once, and rendered directly rather than validated again as the
    # response model.
    return Response(out.model_dump_json(), media_type="application/json")


def create_app(settings: Settings | None = None) -> FastAPI:
    return _create_app(router, open_services=wiring.status, settings=settings)
