"""Reading an uploaded file from a multipart form, bounded (the HTTP side of image checks)."""

from __future__ import annotations

from starlette.datastructures import UploadFile

from shared.core.images import too_large

_READ_CHUNK = 64 * 1024


async def read_upload(upload: UploadFile, *, max_bytes: int) -> bytes:
    """The upload's bytes; PayloadTooLarge (413) once they pass `max_bytes`, reading no further."""
    if upload.size is not None and upload.size > max_bytes:
        raise too_large(max_bytes)
    parts: list[bytes] = []
    total = 0
    while chunk := await upload.read(_READ_CHUNK):
        total += len(chunk)
        if total > max_bytes:
            raise too_large(max_bytes)
        parts.append(chunk)
    return b"".join(parts)
