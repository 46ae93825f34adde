"""Every endpoint in one app: the local dev server (production runs one Modal function each)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from functions import controls, status, text_to_video, webhook
from shared.config import Settings
from shared.http import create_app as _create_app
from shared.services import Services

ROUTERS: tuple[APIRouter, ...] = (
    text_to_video.router,
    status.router,
    webhook.router,
    controls.router,
)


def create_app(*, settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    return _create_app(*ROUTERS, settings=settings, services=services)
