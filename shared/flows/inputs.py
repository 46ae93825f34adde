"""An image-to-video request's input image: where we keep it and how the provider gets it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from shared.core.images import ImageInfo, data_url
from shared.storage.port import Storage

# Replicate takes files up to 256 KB inline as data URLs; larger ones by URL.
DATA_URL_MAX_BYTES = 256 * 1024


def input_image_path(user_id: uuid.UUID, info: ImageInfo) -> str:
    """Content-addressed: a replayed request stores nothing new."""
    return f"{user_id}/inputs/{info.sha256}.{info.extension}"


@dataclass(frozen=True)
class InputImages:
    storage: Storage
    link_ttl_s: int

    async def keep(self, user_id: uuid.UUID, data: bytes, info: ImageInfo) -> str:
        """Store a checked image at `input_image_path`; return what the provider receives for
        it (a data URL when small enough, else a signed link that outlives the prediction)."""
        path = input_image_path(user_id, info)
        await self.storage.put_bytes(path, data, info.content_type)
        if info.size <= DATA_URL_MAX_BYTES:
            return data_url(data, info.content_type)
        return await self.storage.signed_url(path, self.link_ttl_s)
