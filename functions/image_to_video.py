"""POST /api/generation/image-to-video (multipart): check the image by its bytes, keep it, then
charge and start the prediction. Nothing is charged for a request whose image is refused."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from functions.text_to_video import created_answer, submit_request
from shared.core.images import data_url, inspect_image_async, read_upload
from shared.web.app import create_app as _create_app
from shared.web.deps import Form, IdempotencyKey, ServicesDep, User
from shared.web.schemas import REPLAYED, CreatedOut, GenerationRequest, error_responses

router = APIRouter()

# Replicate takes files up to 256 KB inline as data URLs; larger ones by URL.
DATA_URL_MAX_BYTES = 256 * 1024


def _missing_image() -> RequestValidationError:
    return RequestValidationError(
        [{"type": "missing", "loc": ("body", "image"), "msg": "Field required", "input": None}]
    )


@router.post(
    "/api/generation/image-to-video",
    status_code=status.HTTP_201_CREATED,
    responses={**REPLAYED, **error_responses(401, 402, 409, 413, 415, 422, 429, 502, 503)},
)
async def image_to_video(
    user: User, services: ServicesDep, key: IdempotencyKey, form: Form, response: Response
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
    services.catalog.lookup("i2v", body.model, body.resolution)  # before any work on the image

    settings = services.settings
    data = await read_upload(image, max_bytes=settings.max_upload_bytes)
    info = await inspect_image_async(data)
    # Content-addressed: a replayed request stores nothing new.
    path = f"{user.id}/inputs/{info.sha256}.{info.extension}"
    await services.storage.put_bytes(path, data, info.content_type)
    if info.size <= DATA_URL_MAX_BYTES:
        image_ref = data_url(data, info.content_type)
    else:
        image_ref = await services.storage.signed_url(path, settings.input_url_ttl_s)

    request = submit_request(
        user.id,
        "i2v",
        body,
        idempotency_key=key,
        input_image_path=path,
        input_digest=info.sha256,
        image_ref=image_ref,
    )
    return created_answer(await services.lifecycle.submit(request), response)


def create_app() -> FastAPI:
    return _create_app(router)
