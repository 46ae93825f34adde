"""The OpenAPI document, made to tell the truth: frontends generate their clients from it.

FastAPI's generated document is close; what it cannot know is fixed here, once, when the
document is first asked for:

- every 422 is our error body (`detail` is a string), not FastAPI's HTTPValidationError;
- models and resolutions are the catalog's (enums, and which resolutions each model has), so
  a request the document calls valid is one the API accepts;
- the image-to-video body is the multipart form the endpoint reads (it parses the form itself
  to judge the image by its bytes, so FastAPI does not see it);
- the bearer token is declared as the security scheme of every route that needs it.

`tests/functions/test_openapi.py` holds it to that with schemathesis and all of its checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from shared.core.catalog import Catalog
from shared.web.schemas import GenerationRequest

JsonObject = dict[str, Any]

_ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}
_IMAGE_TO_VIDEO = "/api/generation/image-to-video"
_TEXT_TO_VIDEO_BODY = "TextToVideoRequest"
_FASTAPI_422 = ("HTTPValidationError", "ValidationError")


def truthful_openapi(app: FastAPI, catalog: Catalog) -> Callable[[], JsonObject]:
    """A replacement for `app.openapi`: FastAPI's document with the fixes above."""

    def openapi() -> JsonObject:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, routes=app.routes, description=app.description
        )
        _errors_in_our_shape(schema)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        if _TEXT_TO_VIDEO_BODY in components:
            _catalog_choices(components[_TEXT_TO_VIDEO_BODY], catalog, "t2v")
        operation = schema["paths"].get(_IMAGE_TO_VIDEO, {}).get("post")
        if operation is not None:
            operation["requestBody"] = _image_to_video_body(catalog)
        _bearer_security(schema)
        app.openapi_schema = schema
        return schema

    return openapi


def _operations(schema: JsonObject) -> list[JsonObject]:
    return [op for item in schema.get("paths", {}).values() for op in item.values()]


def _errors_in_our_shape(schema: JsonObject) -> None:
    for operation in _operations(schema):
        response = operation.get("responses", {}).get("422")
        if response is not None:
            response["content"] = {"application/json": {"schema": dict(_ERROR_REF)}}
            response["description"] = "Invalid input: `detail` says what, `errors` lists fields."
    components = schema.get("components", {}).get("schemas", {})
    for name in _FASTAPI_422:
        components.pop(name, None)


def _catalog_choices(body: JsonObject, catalog: Catalog, kind: str) -> None:
    """Models and resolutions as enums, and each model with only its own resolutions."""
    offered: dict[str, list[str]] = {}
    for offering in catalog.offerings.values():
        if offering.kind == kind:
            offered.setdefault(offering.model, []).append(offering.resolution)
    properties = body.setdefault("properties", {})
    properties["model"] = {
        "type": "string",
        "enum": sorted(offered),
        "description": "A model of the catalog (see `resolution` for what each offers).",
    }
    properties["resolution"] = {
        "type": "string",
        "enum": sorted({r for sizes in offered.values() for r in sizes}),
    }
    body["anyOf"] = [
        {
            "properties": {
                "model": {"const": model},
                "resolution": {"enum": sorted(sizes)},
            }
        }
        for model, sizes in sorted(offered.items())
    ]


def _image_to_video_body(catalog: Catalog) -> JsonObject:
    form: JsonObject = GenerationRequest.model_json_schema()
    form.pop("title", None)
    form.pop("additionalProperties", None)
    properties = form["properties"]
    # Form fields are text: no nulls; an empty negative prompt means none.
    properties["negative_prompt"] = {"type": "string", "maxLength": 500}
    properties["seed"] = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
    properties["aspect_ratio"] = {"type": "string", "enum": ["16:9", "9:16"]}
    properties["image"] = {
        "type": "string",
        "format": "binary",
        "description": "A JPEG, PNG or WebP image of at most 10 MB, 64-8192 px a side; "
        "judged by its bytes (anything else is a 415).",
    }
    form["required"] = ["image", "prompt", "model", "resolution"]
    _catalog_choices(form, catalog, "i2v")
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": form,
                "encoding": {"image": {"contentType": "image/jpeg, image/png, image/webp"}},
            }
        },
    }


def _bearer_security(schema: JsonObject) -> None:
    """Routes that answer 401 for a missing token take the user's Supabase access token."""
    schemes = schema["components"].setdefault("securitySchemes", {})
    schemes["SupabaseAccessToken"] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The signed-in user's Supabase access token.",
    }
    for path, item in schema.get("paths", {}).items():
        if path.startswith("/api/webhooks/"):
            continue  # signed by the sender, not a user's token
        for operation in item.values():
            if "401" in operation.get("responses", {}):
                operation["security"] = [{"SupabaseAccessToken": []}]
