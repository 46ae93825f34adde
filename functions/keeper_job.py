"""Keep one generation's video: the job the webhook spawns on Modal, so a long copy never runs
inside the webhook's request."""

from __future__ import annotations

import uuid

from shared.core.config import Settings, get_settings
from shared.wiring import copy_job


async def keep_one(
    user_id: uuid.UUID, generation_id: uuid.UUID, settings: Settings | None = None
) -> bool:
    async with copy_job(settings or get_settings()) as keeper:
        return await keeper.keep_by_id(user_id, generation_id)
