"""POST /api/generation/image-to-video (multipart): check the image by its bytes, charge, keep
the image, then start the prediction. Nothing is charged for a request whose image is refused,
and nothing is stored for a request refused (no credits, a limit, a replay)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from shared import wiring
from shared.core.config import Settings
from shared.core.images import inspect_image_async
from shared.flows.inputs import input_image_path
from shared.flows.lifecycle import SubmitRequest
from shared.web.answers import created_answer
from shared.web.app import create_app as _create_app
from shared.web.deps import Form, IdempotencyKey, User
from shared.web.registry import services_of
from shared.web.schemas import REPLAYED, CreatedOut, GenerationRequest, error_responses
from shared.web.uploads import read_upload
from shared.wiring import UploadServices

router = APIRouter()
Services = Annotated[UploadServices, Depends(services_of(UploadServices))]


def _missing_image() -> RequestValidationError:
    return RequestValidationError(
        [{"type": "missing", "loc": ("body", "image"), "msg": "Field required", "input": None}]
    )


@router.post(
    "/api/generation/image-to-video",
    status_code=status.HTTP_201_CREATED,
    responses={**REPLAYED, **error_responses(401, 402, 404, 409, 413, 415, 422, 429, 502, 503)},
)
async def image_to_video(
    user: User, services: Services, key: IdempotencyKey, form: Form, response: Response
) -> CreatedOut:
    """Start an image-to-video generation from a JPEG, PNG or WebP image (at most 10 MB)."""
    image = form.get("image")
    if not isinstance(image, UploadFile):
        raise _missing_image()
    fields = {k: v for k, v in form.multi_items() if k != "image"}
    try:
        body = GenerationRequest.model_validate(fields)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    # Before any work on the image.
    services.lifecycle.catalog.lookup("i2v", body.model, body.resolution)

    data = await read_upload(image, max_bytes=services.max_upload_bytes)
    info = await inspect_image_async(data)

    request = SubmitRequest(
        **body.model_dump(),
        user_id=user.id,
        kind="i2v",
        idempotency_key=key,
        input_image_path=input_image_path(user.id, info),
        input_digest=info.sha256,
    )

    async def keep_image() -> str:
        return await services.inputs.keep(user.id, data, info)

    submitted = await services.lifecycle.submit(request, keep_image=keep_image)
    return created_answer(submitted, response)


def create_app(settings: Settings | None = None) -> FastAPI:
    return _create_app(router, open_services=wiring.image_to_video, settings=settings)
