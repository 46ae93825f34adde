"""Every endpoint in one app: the local dev server (production runs one Modal function each).

With local storage it also serves the stored files under signed, expiring URLs, standing in
for Supabase Storage's signed links.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from functions import (
    account,
    admin,
    controls,
    image_to_video,
    status,
    stripe_webhook,
    text_to_video,
    webhook,
)
from shared.core.config import Settings, get_settings
from shared.storage.local import LocalStorage, local_storage_router
from shared.storage.supabase import open_storage
from shared.web.app import create_app as _create_app
from shared.wiring import Services

ROUTERS: tuple[APIRouter, ...] = (
    text_to_video.router,
    image_to_video.router,
    status.router,
    webhook.router,
    controls.router,
    account.router,
    admin.router,
    stripe_webhook.router,
)


def create_app(*, settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    cfg = settings or (services.settings if services else get_settings())
    routers = list(ROUTERS)
    if cfg.storage_backend == "local":
        storage = open_storage(cfg)
        assert isinstance(storage, LocalStorage)
        routers.append(local_storage_router(storage))
    return _create_app(*routers, settings=cfg, services=services)
