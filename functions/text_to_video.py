"""POST /api/generation/text-to-video: charge, start the prediction, answer with the generation."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Response, status

from shared.deps import IdempotencyKey, ServicesDep, User
from shared.http import create_app as _create_app
from shared.lifecycle import SubmitRequest
from shared.schemas import CreatedOut, TextToVideoRequest, error_responses

router = APIRouter()


@router.post(
    "/api/generation/text-to-video",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 402, 409, 413, 422, 429, 502, 503),
)
async def text_to_video(
    body: TextToVideoRequest,
    user: User,
    services: ServicesDep,
    key: IdempotencyKey,
    response: Response,
) -> CreatedOut:
    """Start a text-to-video generation. A replayed Idempotency-Key answers 200 with the same
    generation and charges nothing."""
    submitted = await services.lifecycle.submit(
        SubmitRequest(
            user_id=user.id,
            kind="t2v",
            model=body.model,
            resolution=body.resolution,
            prompt=body.prompt,
            negative_prompt=body.negative_prompt,
            seed=body.seed,
            aspect_ratio=body.aspect_ratio,
            idempotency_key=key,
        )
    )
    if submitted.replayed:
        response.status_code = status.HTTP_200_OK
    return CreatedOut.created(
        submitted.generation, balance=submitted.balance, replayed=submitted.replayed
    )


def create_app() -> FastAPI:
    return _create_app(router)
