"""The direct configuration's storage: a folder, whose files the dev server (local.devserver)
serves under signed, expiring links.

Stands in for Supabase Storage's signed URLs: `{public_base_url}/storage/{path}?expires=&
signature=` with an HMAC-SHA256 over the path and expiry; an unsigned, altered or expired link
is 403. Writes go to a temporary file renamed into place, so a crash never leaves half a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import re
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import IO
from urllib.parse import quote, urlencode

from shared.core.errors import PermissionDenied
from shared.storage.port import StorageUnavailable, check_path

_FLUSH_BYTES = 1024 * 1024  # coalesce small network chunks into writes of about this size
_EXPIRES = re.compile(r"[0-9]{1,12}")


class LocalStorage:
    """Files under `root`, linked as `{public_base_url}/storage/{path}?expires=&signature=`."""

    def __init__(
        self,
        root: Path,
        public_base_url: str,
        signing_key: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = root
        self._base_url = public_base_url.rstrip("/")
        self._key = signing_key.encode()
        self._clock = clock

    def file_path(self, path: str) -> Path:
        return self.root.joinpath(*check_path(path).split("/"))

    async def put_bytes(self, path: str, data: bytes, content_type: str) -> None:
        await self.put_stream(path, _single(data), content_type)

    async def put_stream(
        self, path: str, chunks: AsyncIterator[bytes], content_type: str, *, size: int | None = None
    ) -> int:
        target = self.file_path(path)
        written = 0
        try:
            handle, temp = await asyncio.to_thread(_open_temp, target)
            try:
                buffer = bytearray()
                async for chunk in chunks:
                    buffer += chunk
                    written += len(chunk)
                    if len(buffer) >= _FLUSH_BYTES:
                        full, buffer = buffer, bytearray()
                        await asyncio.to_thread(handle.write, full)
                await asyncio.to_thread(_write_and_commit, handle, temp, target, bytes(buffer))
            except BaseException:
                # Any failure, the source's included, leaves no file under the final name.
                # Closing waits for at most one in-flight chunk write.
                _discard(handle, temp)
                raise
        except OSError as exc:
            raise StorageUnavailable("Could not write the file.") from exc
        return written

    async def signed_url(self, path: str, expires_in_s: int) -> str:
        check_path(path)
        expires = str(int(self._clock()) + expires_in_s)
        query = urlencode({"expires": expires, "signature": self._sign(path, expires)})
        return f"{self._base_url}/storage/{quote(path)}?{query}"

    def verify(self, path: str, expires: str | None, signature: str | None) -> int:
        """Seconds the link for `path` has left; PermissionDenied unless signed by us and live."""
        if not expires or not signature or not _EXPIRES.fullmatch(expires):
            raise PermissionDenied("This link is not signed.")
        expected = self._sign(path, expires).encode()
        if not hmac.compare_digest(signature.encode("utf-8", "replace"), expected):
            raise PermissionDenied("This link's signature is not valid.")
        left = int(expires) - int(self._clock())
        if left <= 0:
            raise PermissionDenied("This link has expired.")
        return left

    async def exists(self, path: str) -> bool:
        return await asyncio.to_thread(self.file_path(path).is_file)

    async def remove(self, paths: Sequence[str]) -> None:
        targets = [self.file_path(path) for path in paths]  # every path checked before any delete
        try:
            await asyncio.to_thread(_unlink_all, targets)
        except OSError as exc:
            raise StorageUnavailable("Could not delete the files.") from exc

    async def list_files(self, prefix: str) -> list[str]:
        folder = prefix.strip("/")
        base = self.file_path(folder) if folder else self.root
        return await asyncio.to_thread(_files_under, self.root, base)

    async def aclose(self) -> None:
        return None

    def _sign(self, path: str, expires: str) -> str:
        return hmac.new(self._key, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()


async def _single(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _unlink_all(targets: list[Path]) -> None:
    for target in targets:
        target.unlink(missing_ok=True)


def _open_temp(target: Path) -> tuple[IO[bytes], Path]:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    return os.fdopen(fd, "wb"), Path(name)


def _write_and_commit(handle: IO[bytes], temp: Path, target: Path, tail: bytes) -> None:
    handle.write(tail)
    handle.flush()
    os.fsync(handle.fileno())  # the data is on disk before its name is
    handle.close()
    os.replace(temp, target)


def _files_under(root: Path, base: Path) -> list[str]:
    """Relative paths of the files under `base`, without the temporary `.part` files."""
    if not base.is_dir():
        return []
    return sorted(
        p.relative_to(root).as_posix()
        for p in base.rglob("*")
        if p.is_file() and not p.name.endswith(".part")
    )


def _discard(handle: IO[bytes], temp: Path) -> None:
    with contextlib.suppress(OSError):
        handle.close()
    with contextlib.suppress(OSError):
        temp.unlink(missing_ok=True)
