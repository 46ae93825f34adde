"""Where the owner watches a video: our copy (a signed link) once kept, else the provider's."""

from __future__ import annotations

from dataclasses import dataclass

from shared.core.domain import Generation
from shared.storage.port import Storage


@dataclass(frozen=True)
class VideoLinks:
    storage: Storage
    ttl_s: int = 3600

    async def view_url(self, gen: Generation) -> str | None:
        if gen.video_path is None:
            return gen.video_url
        return await self.storage.signed_url(gen.video_path, self.ttl_s)
