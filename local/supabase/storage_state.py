"""What the Storage emulator holds: buckets, object metadata, files on disk, TUS uploads."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from fastapi.responses import JSONResponse

from shared.storage.port import content_type_for

_REASONS = {
    400: "Bad Request",
    404: "not_found",
    409: "Duplicate",
    413: "Payload too large",
}


class StorageError(Exception):
    """An error answered in Storage's shape: `{"statusCode", "code", "error", "message"}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> JSONResponse:
        body = {
            "statusCode": str(self.status),
            "code": self.code,
            "error": _REASONS.get(self.status, self.code),
            "message": self.message,
        }
        return JSONResponse(body, status_code=self.status)


def too_large() -> StorageError:
    return StorageError(413, "EntityTooLarge", "The object exceeded the maximum allowed size")


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Bucket:
    id: str
    public: bool = False
    file_size_limit: int | None = None
    allowed_mime_types: list[str] | None = None
    created_at: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.id,
            "owner": "",
            "public": self.public,
            "file_size_limit": self.file_size_limit,
            "allowed_mime_types": self.allowed_mime_types,
            "created_at": _stamp(self.created_at),
            "updated_at": _stamp(self.created_at),
        }


@dataclass
class StoredObject:
    bucket: str
    name: str
    file: Path
    size: int
    content_type: str
    created_at: float
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "bucket_id": self.bucket,
            "size": self.size,
            "content_type": self.content_type,
            "created_at": _stamp(self.created_at),
            "last_modified": _stamp(self.created_at),
        }

    def entry(self, leaf: str) -> dict[str, Any]:
        stamp = _stamp(self.created_at)
        return {
            "name": leaf,
            "id": self.id,
            "created_at": stamp,
            "updated_at": stamp,
            "last_accessed_at": stamp,
            "metadata": {"size": self.size, "mimetype": self.content_type},
        }


class Writer:
    """One object being written: a temporary file renamed into place by `commit`."""

    def __init__(self, state: StorageState, bucket: Bucket, name: str, *, upsert: bool) -> None:
        self._state, self._bucket, self._name, self._upsert = state, bucket, name, upsert
        self.size = 0
        state.root.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=state.root, prefix=".upload.", suffix=".part")
        self._temp = Path(temp)
        self._handle: IO[bytes] = os.fdopen(fd, "wb")

    async def write(self, block: bytes) -> None:
        self.size += len(block)
        limit = self._bucket.file_size_limit
        if limit is not None and self.size > limit:
            raise too_large()
        await asyncio.to_thread(self._handle.write, block)

    async def commit(self, content_type: str) -> StoredObject:
        await asyncio.to_thread(self._handle.close)
        return self._state.put(self._bucket, self._name, self._temp, content_type, self._upsert)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._handle.close()
        self._temp.unlink(missing_ok=True)


@dataclass
class Upload:
    id: str
    bucket: Bucket
    name: str
    length: int
    content_type: str
    upsert: bool
    temp: Path
    offset: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class StorageState:
    def __init__(self, root: Path, *, clock: Callable[[], float]) -> None:
        self.root = root
        self.clock = clock
        self.buckets: dict[str, Bucket] = {}
        self.objects: dict[tuple[str, str], StoredObject] = {}
        self.uploads: dict[str, Upload] = {}  # TUS uploads by id
        self.patch_sizes: list[int] = []  # bytes received by each TUS PATCH, for tests

    def add_bucket(self, bucket: Bucket) -> None:
        """Create `bucket`; files already under `root/<bucket>/` (a previous run's, the local
        stack's database still naming them) are its objects again."""
        self.buckets[bucket.id] = bucket
        folder = self.root / bucket.id
        for file in sorted(folder.rglob("*")) if folder.is_dir() else ():
            if file.is_file():
                name = file.relative_to(folder).as_posix()
                stat = file.stat()
                self.objects[(bucket.id, name)] = StoredObject(
                    bucket.id, name, file, stat.st_size, content_type_for(name), stat.st_mtime
                )

    def bucket(self, bucket_id: str) -> Bucket:
        bucket = self.buckets.get(bucket_id)
        if bucket is None:
            raise StorageError(404, "NoSuchBucket", "Bucket not found")
        return bucket

    def object(self, bucket_id: str, name: str) -> StoredObject:
        self.bucket(bucket_id)
        found = self.objects.get((bucket_id, name))
        if found is None:
            raise StorageError(404, "NoSuchKey", "Object not found")
        return found

    def check_new(self, bucket: Bucket, name: str, *, upsert: bool, size: int | None) -> None:
        """Refuse before any byte is stored: a name taken (without upsert), a size over limit."""
        if not upsert and (bucket.id, name) in self.objects:
            raise StorageError(409, "Duplicate", "The resource already exists")
        limit = bucket.file_size_limit
        if size is not None and limit is not None and size > limit:
            raise too_large()

    def writer(self, bucket_id: str, name: str, *, upsert: bool, size: int | None) -> Writer:
        bucket = self.bucket(bucket_id)
        self.check_new(bucket, name, upsert=upsert, size=size)
        return Writer(self, bucket, name, upsert=upsert)

    def put(
        self, bucket: Bucket, name: str, temp: Path, content_type: str, upsert: bool
    ) -> StoredObject:
        """Move a complete temporary file into place as `bucket/name`."""
        if not upsert and (bucket.id, name) in self.objects:
            temp.unlink(missing_ok=True)
            raise StorageError(409, "Duplicate", "The resource already exists")
        target = self.root.joinpath(bucket.id, *name.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, target)
        stored = StoredObject(
            bucket.id, name, target, target.stat().st_size, content_type, self.clock()
        )
        self.objects[(bucket.id, name)] = stored
        return stored

    def remove(self, bucket_id: str, names: list[str]) -> list[dict[str, Any]]:
        self.bucket(bucket_id)
        removed = []
        for name in names:
            stored = self.objects.pop((bucket_id, name), None)
            if stored is not None:
                stored.file.unlink(missing_ok=True)
                removed.append(stored.info())
        return removed

    def list_folder(self, bucket_id: str, prefix: str) -> list[dict[str, Any]]:
        """A folder's entries as Storage lists them: files with metadata, then sub-folders
        (`id: null`), sorted by name."""
        self.bucket(bucket_id)
        folder = prefix.strip("/")
        lead = f"{folder}/" if folder else ""
        files: dict[str, dict[str, Any]] = {}
        folders: set[str] = set()
        for (bucket, name), stored in self.objects.items():
            if bucket != bucket_id or not name.startswith(lead):
                continue
            rest = name[len(lead) :]
            head, sep, _ = rest.partition("/")
            if sep:
                folders.add(head)
            else:
                files[rest] = stored.entry(rest)
        entries = [
            {
                "name": f,
                "id": None,
                "updated_at": None,
                "created_at": None,
                "last_accessed_at": None,
                "metadata": None,
            }
            for f in folders
        ]
        entries += list(files.values())
        return sorted(entries, key=lambda e: str(e["name"]))
