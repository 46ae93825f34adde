"""GET /api/generation/status/{id}: the owner's view of one generation.

If it is still running and nothing was heard for a while, this asks the provider once (claimed
atomically, capped): the polling fallback for lost webhooks, bounded.

Every open tab polls this: it is served by an express lane (shared.web.lanes), which skips
FastAPI's routing and dependency solving. The route below is what the OpenAPI document shows
(`openapi_extra` declares the path parameter; the 401 makes the bearer token its security
scheme) and answers the same way, through the same `answer`.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response

from shared import wiring
from shared.core.config import Settings
from shared.web.answers import parse_generation_id
from shared.web.app import create_app as _create_app
from shared.web.deps import authenticated
from shared.web.lanes import Lane
from shared.web.registry import Registry, provided
from shared.web.schemas import GenerationOut, error_responses
from shared.wiring import StatusServices

router = APIRouter()
PATH = "/api/generation/status/"

_PATH_PARAMETER = {
    "name": "generation_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "title": "Generation Id"},
}


async def answer(registry: Registry, request: Request, generation_id: str) -> Response:
    """The generation, if it is the caller's (404 for anyone else, and for malformed ids)."""
    user = await authenticated(registry, request.headers.get("authorization"))
    services = provided(registry, StatusServices)
    gen = await services.lifecycle.read(user.id, parse_generation_id(generation_id))
    out = GenerationOut.from_generation(gen, video_url=await services.links.view_url(gen))
    # Built (and validated) once, and rendered directly rather than validated again as the
    # response model.
    return Response(out.model_dump_json(), media_type="application/json")


LANE = Lane("GET", PATH, answer)


@router.get(
    PATH + "{generation_id}",
    response_model=GenerationOut,
    responses=error_responses(401, 404, 503),
    openapi_extra={"parameters": [_PATH_PARAMETER]},
)
async def generation_status(request: Request) -> Response:
    """The generation, if it is the caller's (404 for anyone else, and for malformed ids)."""
    return await answer(request.app.state.services, request, request.path_params["generation_id"])


def create_app(settings: Settings | None = None) -> FastAPI:
    return _create_app(router, open_services=wiring.status, settings=settings, lanes=[LANE])
