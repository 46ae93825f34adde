"""The storage port: what flows need of a file store, and the rules every adapter shares.

Paths are object keys our code builds, like "<user_id>/videos/<generation_id>.mp4". A malformed
one is a bug, not a user's mistake, so it raises ValueError. No write leaves a partial object
under its final name, and streams are written chunk by chunk: memory does not grow with size.
Every foreign failure (httpx, storage3, the file system) becomes StorageUnavailable.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import PurePosixPath
from typing import Protocol

from shared.core.errors import AppError

_CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
}


class StorageUnavailable(AppError):
    """Storage refused a call or could not be reached; the caller may retry later."""

    code = "storage_unavailable"
    status = 503
    default_detail = "File storage is unavailable; try again shortly."
    retryable: bool = True


class StorageLimitExceeded(StorageUnavailable):
    """The file is larger than the bucket (or the project) accepts: trying again cannot help."""

    retryable = False
    default_detail = "The file is larger than file storage accepts."


class Storage(Protocol):
    """What the service needs of a file store."""

    async def put_bytes(self, path: str, data: bytes, content_type: str) -> None: ...

    async def put_stream(
        self, path: str, chunks: AsyncIterator[bytes], content_type: str, *, size: int | None = None
    ) -> int:
        """Store the stream; `size`, when known, is its exact length (saves a spool to disk)."""
        ...

    async def signed_url(self, path: str, expires_in_s: int) -> str: ...

    async def exists(self, path: str) -> bool: ...

    async def remove(self, paths: Sequence[str]) -> None:
        """Delete these files; a file already gone is not an error."""
        ...

    async def list_files(self, prefix: str) -> list[str]:
        """Every file path under the folder `prefix` (its subfolders too), sorted."""
        ...

    async def aclose(self) -> None: ...


def check_path(path: str) -> str:
    """Return `path` if it is a safe relative object key; raise ValueError otherwise."""
    if not path or path.startswith("/") or "\\" in path:
        raise ValueError(f"bad storage path {path!r}: must be relative, with '/' separators")
    if any(ord(c) < 0x20 or c == "\x7f" for c in path):
        raise ValueError(f"bad storage path {path!r}: control characters")
    if any(segment in ("", ".", "..") for segment in path.split("/")):
        raise ValueError(f"bad storage path {path!r}: empty or dot segment")
    return path


def content_type_for(path: str) -> str:
    """The content type a stored file is served with, chosen by its extension."""
    return _CONTENT_TYPES.get(PurePosixPath(path).suffix.lower(), "application/octet-stream")
