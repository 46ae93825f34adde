"""POST /api/generation/text-to-video: charge, start the prediction, answer with the generation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Response, status

from shared import wiring
from shared.core.config import Settings
from shared.flows.lifecycle import SubmitRequest
from shared.web.answers import created_answer
from shared.web.app import create_app as _create_app
from shared.web.deps import IdempotencyKey, User
from shared.web.registry import services_of
from shared.web.schemas import REPLAYED, CreatedOut, TextToVideoRequest, error_responses
from shared.wiring import SubmitServices

router = APIRouter()
Services = Annotated[SubmitServices, Depends(services_of(SubmitServices))]


@router.post(
    "/api/generation/text-to-video",
    status_code=status.HTTP_201_CREATED,
    responses={**REPLAYED, **error_responses(401, 402, 404, 409, 413, 422, 429, 502, 503)},
)
async def text_to_video(
    body: TextToVideoRequest,
    user: User,
    services: Services,
    key: IdempotencyKey,
    response: Response,
) -> CreatedOut:
    """Start a text-to-video generation. A replayed Idempotency-Key answers 200 with the same
    generation and charges nothing."""
    # The body's fields are the request's of the same names (SubmitRequest forbids others).
    request = SubmitRequest(**body.model_dump(), user_id=user.id, kind="t2v", idempotency_key=key)
    return created_answer(await services.lifecycle.submit(request), response)


def create_app(settings: Settings | None = None) -> FastAPI:
    return _create_app(router, open_services=wiring.text_to_video, settings=settings)
