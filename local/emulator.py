"""A Replicate-compatible HTTP emulator for the local stack and the reliability tests.

It speaks the part of Replicate's API the project uses, closely enough for the real `replicate`
client (`replicate.Client(api_token=..., base_url="http://127.0.0.1:PORT")`):

    POST /v1/models/{owner}/{name}/predictions   create (201, status "starting")
    POST /v1/predictions                         create by version
    GET  /v1/predictions[/{id}]                  list / get
    GET  /v1/account                             who the token belongs to
    GET  /v1/models/{owner}/{name}               a model (known: the catalog's, unless configured)
    GET  /v1/webhooks/default/secret             the webhook signing secret (`key`)
    POST /v1/predictions/{id}/cancel             cancel
    GET  /files/{id}.mp4                         the output: a real playable MP4 (no auth)

Creates honour `Cancel-After` (see `local.emulator_engine` for aborted vs canceled) and
`Prefer: wait[=N]`. Webhooks are signed with `shared.web.signatures` exactly as Replicate signs
them. Test and operator controls, unauthenticated (the emulator only listens on loopback):

    GET/POST /__emulator/faults          read / change fault knobs (`local.emulator_faults`)
    GET  /__emulator/predictions         every prediction with its webhook deliveries
    GET  /__emulator/predictions/{id}    one of them; `?wait=S` waits up to S seconds for it
                                         to settle (final status, every webhook handled)
    POST /__emulator/reset               forget predictions, restore faults and dice
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import re
from typing import Annotated, Literal

import httpx
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, JsonValue

from local.emulator_engine import Engine
from local.emulator_faults import EmulatorConfig, faults_router, parse_duration
from local.emulator_media import mp4_chunks, padded_size
from local.emulator_prediction import ALL_EVENTS, Prediction
from local.serve import engine_lifespan
from shared.core.catalog import DEFAULT_OFFERINGS

_TITLES = {
    400: "Bad request",
    401: "Unauthenticated",
    404: "Not found",
    422: "Input validation failed",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
}


class ProblemError(Exception):
    """An RFC 7807 error answer, as Replicate sends them (`title`, `detail`, `status`)."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"title": _TITLES.get(status, "Error"), "detail": detail, "status": status}
    return JSONResponse(body, status, headers=headers, media_type="application/problem+json")


class CreatePrediction(BaseModel):
    """The create body the `replicate` client sends (unknown fields ignored, as Replicate)."""

    model_config = ConfigDict(extra="ignore")

    input: dict[str, JsonValue]
    version: str | None = None
    webhook: str | None = None
    webhook_events_filter: list[Literal["start", "output", "logs", "completed"]] | None = None


def create_emulator_app(settings: EmulatorConfig) -> FastAPI:
    """The emulator as an ASGI app; its state lives in the app and starts with its lifespan."""
    engine = Engine(settings)

    app = FastAPI(title="Replicate emulator", lifespan=engine_lifespan(engine))

    @app.exception_handler(ProblemError)
    async def on_problem(_: Request, exc: ProblemError) -> JSONResponse:
        return _problem(exc.status, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        messages = [
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
        ]
        return _problem(422, "; ".join(messages) or "invalid request")

    known_models = (
        settings.known_models
        if settings.known_models is not None
        else frozenset(o.replicate_model for o in DEFAULT_OFFERINGS)
    )

    def authorized(authorization: Annotated[str | None, Header()] = None) -> None:
        expected = f"Bearer {settings.api_token}".encode()
        if not authorization or not hmac.compare_digest(authorization.encode(), expected):
            raise ProblemError(401, "You did not pass a valid authentication token")

    def found(prediction_id: str) -> Prediction:
        prediction = engine.predictions.get(prediction_id)
        if prediction is None:
            raise ProblemError(404, f"Prediction {prediction_id} not found")
        return prediction

    async def create(
        request: Request, body: CreatePrediction, model: str, version: str
    ) -> JSONResponse:
        faults = engine.faults
        if faults.create_error_status is not None:
            status = faults.create_error_status
            retry = {"Retry-After": "1"} if status in (429, 503) else None
            raise ProblemError(status, "Emulated provider error", retry)
        cancel_after = request.headers.get("cancel-after")
        try:
            cancel_after_s = parse_duration(cancel_after) if cancel_after is not None else None
        except ValueError as exc:
            raise ProblemError(422, f"Cancel-After: {exc}") from exc
        if body.webhook is not None and not re.match(r"https?://[^/\s]+", body.webhook):
            raise ProblemError(422, "webhook must be an http(s) URL")
        _check_file_inputs(body.input)
        await _fetch_local_inputs(body.input)
        events = ALL_EVENTS if body.webhook_events_filter is None else body.webhook_events_filter
        prediction = engine.create(
            model=model,
            version=version,
            input=body.input,
            base_url=settings.public_base_url or str(request.base_url).rstrip("/"),
            webhook=body.webhook,
            events=frozenset(events),
            cancel_after_s=cancel_after_s,
        )
        wait_s = _prefer_wait(request.headers.get("prefer"))
        if wait_s:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(prediction.done.wait(), wait_s)
        snapshot = prediction.to_json()  # what the caller would have been told, had it waited
        if faults.create_delay_s:
            await asyncio.sleep(faults.create_delay_s)
        return JSONResponse(snapshot, 201)

    api = APIRouter(prefix="/v1", dependencies=[Depends(authorized)])

    @api.post("/models/{owner}/{name}/predictions", status_code=201)
    async def create_for_model(
        owner: str, name: str, body: CreatePrediction, request: Request
    ) -> JSONResponse:
        return await create(request, body, f"{owner}/{name}", "hidden")

    @api.post("/predictions", status_code=201)
    async def create_for_version(body: CreatePrediction, request: Request) -> JSONResponse:
        if not body.version:
            raise ProblemError(422, "version is required")
        if ":" in body.version:  # owner/name:version_id
            model, _, version_id = body.version.partition(":")
        elif "/" in body.version:  # an official model's owner/name
            model, version_id = body.version, "hidden"
        else:  # a bare version id
            model, version_id = "emulator/model", body.version
        return await create(request, body, model, version_id)

    @api.get("/predictions")
    async def list_predictions() -> dict[str, JsonValue]:
        results: list[JsonValue] = [p.to_json() for p in reversed(engine.predictions.values())]
        return {"next": None, "previous": None, "results": results}

    @api.get("/predictions/{prediction_id}")
    async def get_prediction(prediction_id: str) -> dict[str, JsonValue]:
        return found(prediction_id).to_json()

    @api.post("/predictions/{prediction_id}/cancel")
    async def cancel_prediction(prediction_id: str) -> dict[str, JsonValue]:
        prediction = found(prediction_id)
        engine.cancel(prediction)
        return prediction.to_json()

    @api.get("/account")
    async def account() -> dict[str, JsonValue]:
        return {"type": "organization", "username": "emulator", "name": "Local emulator"}

    @api.get("/models/{owner}/{name}")
    async def get_model(owner: str, name: str) -> dict[str, JsonValue]:
        slug = f"{owner}/{name}"
        if slug not in known_models:
            raise ProblemError(404, f"Model {slug} not found")
        return {
            "url": f"https://replicate.com/{slug}",
            "owner": owner,
            "name": name,
            "visibility": "public",
            "latest_version": None,
        }

    @api.get("/webhooks/default/secret")
    async def webhook_secret() -> dict[str, JsonValue]:
        return {"key": settings.webhook_secret}

    app.include_router(api)

    @app.get("/files/{prediction_id}.mp4")
    async def output_file(prediction_id: str) -> Response:
        prediction = engine.predictions.get(prediction_id)
        if prediction is None or prediction.output is None:
            raise ProblemError(404, "File not found")
        size = padded_size(prediction.output_size_bytes)
        return StreamingResponse(
            mp4_chunks(prediction.output_size_bytes),
            media_type="video/mp4",
            headers={"Content-Length": str(size)},
        )

    app.include_router(faults_router(engine))

    @app.get("/__emulator/predictions")
    async def emulator_predictions() -> list[dict[str, JsonValue]]:
        return [_record(p) for p in engine.predictions.values()]

    @app.get("/__emulator/predictions/{prediction_id}")
    async def emulator_prediction(
        prediction_id: str, wait: Annotated[float, Query(ge=0, le=60)] = 0
    ) -> dict[str, JsonValue]:
        prediction = found(prediction_id)
        if wait:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(prediction.settled.wait(), wait)
        return _record(prediction)

    @app.post("/__emulator/reset", status_code=204)
    async def reset() -> Response:
        await engine.reset()
        return Response(status_code=204)

    return app


def _record(prediction: Prediction) -> dict[str, JsonValue]:
    return {
        "prediction": prediction.to_json(),
        "webhooks": [w.to_json() for w in prediction.webhooks],
        "settled": prediction.settled.is_set(),
    }


_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


async def _fetch_local_inputs(values: dict[str, JsonValue]) -> None:
    """Fetch file inputs served by the local stack, as Replicate fetches URLs it is given: an
    unreadable link (unsigned, expired, missing) fails the create. Other hosts are only
    recorded: the local stack has no network."""
    for key, value in values.items():
        if "image" not in key or not isinstance(value, str) or not value.startswith("http"):
            continue
        if httpx.URL(value).host not in _LOCAL_HOSTS:
            continue
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                response = await client.get(value)
        except httpx.HTTPError as exc:
            raise ProblemError(422, f"{key}: could not fetch the file ({exc})") from exc
        if response.status_code != 200 or not response.content:
            raise ProblemError(
                422, f"{key}: could not fetch the file (HTTP {response.status_code})"
            )


def _check_file_inputs(values: dict[str, JsonValue]) -> None:
    """Image inputs must be a data URL or an http(s) URL; nothing is fetched, only recorded."""
    for key, value in values.items():
        if "image" not in key or value is None:
            continue
        if not isinstance(value, str) or not value.startswith(("data:", "http://", "https://")):
            raise ProblemError(422, f"{key}: expected a data URL or an http(s) URL")


def _prefer_wait(prefer: str | None) -> float:
    """Seconds to hold a create open for `Prefer: wait` (60) or `Prefer: wait=N` (1..60)."""
    match = re.fullmatch(r"\s*wait(?:\s*=\s*(\d+))?\s*", prefer or "")
    if match is None:
        return 0.0
    return float(min(60, max(1, int(match.group(1) or 60))))
