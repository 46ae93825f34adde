"""The dev server's stand-in for Supabase Storage's signed links: `GET|HEAD /storage/{path}`
serves a file of the local folder storage, for a link that storage signed (403 otherwise)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from shared.core.errors import NotFound
from shared.storage.local import LocalStorage
from shared.storage.port import content_type_for


def local_storage_router(storage: LocalStorage) -> APIRouter:
    """`GET|HEAD /storage/{path}`: a stored file, for a link that `storage` signed."""
    router = APIRouter()

    @router.api_route("/storage/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
    async def stored_file(
        path: str,
        expires: Annotated[str | None, Query()] = None,
        signature: Annotated[str | None, Query()] = None,
    ) -> FileResponse:
        seconds_left = storage.verify(path, expires, signature)
        try:
            target = storage.file_path(path)
        except ValueError as exc:
            raise NotFound("No such file.") from exc
        if not await asyncio.to_thread(target.is_file):
            raise NotFound("No such file.")
        return FileResponse(
            target,
            media_type=content_type_for(path),
            headers={"Cache-Control": f"private, max-age={seconds_left}"},
        )

    return router
