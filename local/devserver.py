"""The local dev server: every endpoint group in one app (production runs one Modal function
each), sharing one set of clients (shared.wiring.every_group).

With local folder storage it also serves the stored files under signed, expiring URLs, standing
in for Supabase Storage's signed links (local.storage_routes).
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
from local.storage_routes import local_storage_router
from shared import wiring
from shared.core.config import Settings, get_settings
from shared.storage.local import LocalStorage
from shared.web.app import create_app as _create_app

ROUTERS: tuple[APIRouter, ...] = (
    text_to_video.router,
    image_to_video.router,
    status.router,
    webhook.router,
    controls.router,
    stripe_webhook.router,
    account.router,
    admin.router,
)


def create_app(*, settings: Settings | None = None) -> FastAPI:
    cfg = settings or get_settings()
    routers = list(ROUTERS)
    if cfg.storage_backend == "local":
        # Only signs and verifies links (no client to open): the same folder and key as the
        # storage the services open.
        storage = wiring.open_storage(cfg)
        assert isinstance(storage, LocalStorage)
        routers.append(local_storage_router(storage))
    return _create_app(
        *routers,
        open_services=wiring.every_group,
        settings=cfg,
        lanes=[status.LANE, webhook.LANE],
    )
