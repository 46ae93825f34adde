"""shared.web.lanes: a lane answers exactly what its declared route answers, inside the same
middleware (request ids, CORS, errors in our shape), and leaves every other request to the
router."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

from shared.core.config import Settings
from shared.core.errors import NotFound, ProviderUnavailable
from shared.web.app import create_app
from shared.web.lanes import Lane
from shared.web.registry import Registry

ORIGIN = "https://app.example"


async def answer(registry: Registry, request: Request, param: str) -> Response:
    if param == "missing":
        raise NotFound("No such thing.")
    if param == "busy":
        raise ProviderUnavailable("Try again shortly.")
    body = {
        "param": param,
        "auth": request.headers.get("authorization"),
        "query": request.query_params.get("q"),
        "body": (await request.body()).decode(),
        "service": registry[str],
    }
    return Response(json.dumps(body), media_type="application/json")


LANE = Lane("GET", "/things/", answer)
POST_LANE = Lane("POST", "/post-things", answer, param=False)


def router(served: list[str]) -> APIRouter:
    """The declared routes, which record that the router (not a lane) answered."""
    declared = APIRouter()

    @declared.get("/things/{param}")
    async def thing(request: Request) -> Response:
        served.append(request.url.path)
        return await answer(request.app.state.services, request, request.path_params["param"])

    @declared.post("/post-things")
    async def post_thing(request: Request) -> Response:
        served.append(request.url.path)
        return await answer(request.app.state.services, request, "")

    return declared


@asynccontextmanager
async def opener(_: Settings) -> AsyncIterator[Registry]:
    yield {str: "the services"}


@asynccontextmanager
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as c:
            yield c


def app_with(lanes: list[Lane], served: list[str]) -> FastAPI:
    settings = Settings(environment="test", cors_origins=[ORIGIN])
    return create_app(router(served), open_services=opener, settings=settings, lanes=lanes)


def comparable(response: httpx.Response) -> tuple[int, object, str | None]:
    body = response.json()
    body.pop("request_id", None)  # differs per request by design
    return response.status_code, body, response.headers.get("retry-after")


@pytest.mark.parametrize("path", ["/things/abc", "/things/missing", "/things/busy"])
async def test_the_lane_answers_what_the_declared_route_answers(path: str) -> None:
    routed: list[str] = []
    laned: list[str] = []
    headers = {"authorization": "Bearer t"}
    async with client(app_with([], routed)) as plain, client(app_with([LANE], laned)) as fast:
        expected = await plain.get(path, headers=headers)
        got = await fast.get(path, headers=headers)
    assert routed == [path]  # the router answered without the lane ...
    assert laned == []  # ... and never with it
    assert comparable(got) == comparable(expected)
    assert got.headers["content-type"] == expected.headers["content-type"]


async def test_a_whole_path_lane_reads_the_body_and_query_as_the_route_does() -> None:
    routed: list[str] = []
    laned: list[str] = []
    request = {"params": {"q": "x"}, "content": b"payload", "headers": {"authorization": "t"}}
    async with (
        client(app_with([], routed)) as plain,
        client(app_with([POST_LANE], laned)) as fast,
    ):
        expected = await plain.post("/post-things", **request)  # type: ignore[arg-type]
        got = await fast.post("/post-things", **request)  # type: ignore[arg-type]
        elsewhere = await fast.post("/post-things/more", content=b"x")
    assert (routed, laned) == (["/post-things"], [])
    assert comparable(got) == comparable(expected)
    assert got.json()["body"] == "payload"
    assert got.json()["query"] == "x"
    assert elsewhere.status_code == 404  # not the lane's whole path: the router's answer


async def test_the_lane_runs_inside_request_ids_and_cors() -> None:
    async with client(app_with([LANE], [])) as fast:
        ok = await fast.get("/things/abc", headers={"x-request-id": "req-1", "origin": ORIGIN})
        refused = await fast.get("/things/missing", headers={"x-request-id": "req-2"})
    assert ok.headers["x-request-id"] == "req-1"
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    assert refused.headers["x-request-id"] == "req-2"
    assert refused.json() == {
        "detail": "No such thing.",
        "code": "not_found",
        "request_id": "req-2",
    }


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/things/a/b", 404, "not_found"),  # two segments: no route
        ("GET", "/things/", 404, "not_found"),  # no parameter
        ("POST", "/things/abc", 405, "method_not_allowed"),
    ],
)
async def test_what_no_lane_matches_goes_on_to_the_router(
    method: str, path: str, status: int, code: str
) -> None:
    async with client(app_with([LANE], [])) as fast:
        response = await fast.request(method, path)
    assert (response.status_code, response.json()["code"]) == (status, code)
