"""The OpenAPI document says what the API does (the fuzzer in tests/functions/test_openapi.py
checks the API against it; these pin the parts written by hand)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from local.devserver import create_app
from shared.core.catalog import load_catalog
from shared.core.config import Settings

OVERRIDE = [
    {"model": "t2v-turbo", "kind": "t2v", "resolution": "720p", "cost": 30,
     "replicate_model": "acme/turbo"},
]  # fmt: skip


@pytest.fixture
def document() -> dict[str, Any]:
    settings = Settings(environment="test", catalog_overrides=json.dumps(OVERRIDE))
    schema: dict[str, Any] = create_app(settings=settings).openapi()
    return schema


def test_every_error_response_is_our_error_body(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    assert "HTTPValidationError" not in components
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorOut"}, (path, method)


def test_text_to_video_offers_the_catalogs_models_and_their_resolutions(
    document: dict[str, Any],
) -> None:
    body = document["components"]["schemas"]["TextToVideoRequest"]
    assert body["properties"]["model"]["enum"] == ["t2v-1.3B", "t2v-14B", "t2v-turbo"]
    assert body["properties"]["resolution"]["enum"] == ["480p", "720p"]
    choices = {c["properties"]["model"]["const"]: c["properties"]["resolution"]["enum"]
               for c in body["anyOf"]}  # fmt: skip
    assert choices == {"t2v-1.3B": ["480p"], "t2v-14B": ["480p", "720p"], "t2v-turbo": ["720p"]}
    assert load_catalog(json.dumps(OVERRIDE)).lookup("t2v", "t2v-turbo", "720p").cost == 30


def test_image_to_video_documents_its_multipart_form(document: dict[str, Any]) -> None:
    operation = document["paths"]["/api/generation/image-to-video"]["post"]
    form = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["image", "prompt", "model", "resolution"]
    assert form["properties"]["image"] == {
        "type": "string",
        "format": "binary",
        "description": form["properties"]["image"]["description"],
    }
    assert form["properties"]["model"]["enum"] == ["i2v-14B"]
    assert {"200", "201", "415"} <= operation["responses"].keys()


def test_history_cursor_has_its_format(document: dict[str, Any]) -> None:
    parameters = document["paths"]["/api/generation/history"]["get"]["parameters"]
    (cursor,) = [p for p in parameters if p["name"] == "cursor"]
    pattern = cursor["schema"]["anyOf"][0]["pattern"]
    assert pattern.startswith("^[0-9]{1,16}_")


def test_user_routes_take_the_bearer_token_and_the_webhook_does_not(
    document: dict[str, Any],
) -> None:
    scheme = document["components"]["securitySchemes"]["SupabaseAccessToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for path, item in document["paths"].items():
        for operation in item.values():
            secured = operation.get("security") == [{"SupabaseAccessToken": []}]
            assert secured != path.startswith("/api/webhooks/"), path


# --- errors the framework raises itself, in our shape (documented as such) ----------------


@pytest.fixture
async def framework() -> AsyncIterator[httpx.AsyncClient]:
    # No lifespan: these errors are answered before any service is needed.
    app = create_app(settings=Settings(environment="test"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        yield client


async def test_unknown_route_is_our_404(framework: httpx.AsyncClient) -> None:
    response = await framework.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert isinstance(response.json()["detail"], str)


async def test_wrong_method_is_our_405_with_allow(framework: httpx.AsyncClient) -> None:
    response = await framework.get("/api/generation/text-to-video")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert response.headers["allow"] == "POST"


async def test_undecodable_body_is_invalid_input(framework: httpx.AsyncClient) -> None:
    response = await framework.post(
        "/api/generation/text-to-video",
        content=b"\xff\xfe{",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_input"
    assert response.json()["detail"] == "The request body could not be parsed."
