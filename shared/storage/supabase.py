"""The production storage adapter: a PRIVATE Supabase Storage bucket, read only through signed
URLs (the port and the rules every adapter shares are in shared.storage.port)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from shared.core.http import async_client
from shared.storage.port import StorageLimitExceeded, StorageUnavailable, check_path
from shared.storage.tus import (
    CHUNK_BYTES,
    TusError,
    chain,
    error_message,
    rechunk,
    spooled,
    tus_upload,
)

_LIST_PAGE = 1000

if TYPE_CHECKING:
    from storage3._async.file_api import AsyncBucketProxy
    from storage3.types import FileOptions, ListBucketFilesOptions


class SupabaseStorage:
    """A private Supabase Storage bucket, through supabase-py; streams go up with raw httpx."""

    def __init__(
        self,
        url: str,
        service_role_key: str,
        bucket: str,
        *,
        http: httpx.AsyncClient | None = None,
        timeout_s: float = 30.0,
        retry_delays_s: Sequence[float] = (0.5, 2.0, 5.0),
    ) -> None:
        from storage3 import AsyncStorageClient

        self._owns_http = http is None
        # One client for supabase-py and our streaming uploads; its timeouts bound every call.
        self._http = http or async_client(timeout=httpx.Timeout(timeout_s, connect=5.0))
        self._timeout = httpx.Timeout(timeout_s, connect=5.0)
        self._timeout_s = timeout_s
        self._url = url.rstrip("/")
        self._key = service_role_key
        self._bucket_id = bucket
        self._auth = {"Authorization": f"Bearer {service_role_key}", "apikey": service_role_key}
        self._retry_delays_s = tuple(retry_delays_s)
        # supabase-py's Storage client, built as its umbrella client builds it (without the
        # auth, realtime and functions clients that one also imports at every cold start).
        client = AsyncStorageClient(f"{self._url}/storage/v1/", self._auth, http_client=self._http)
        self._bucket: AsyncBucketProxy = client.from_(bucket)

    async def put_bytes(self, path: str, data: bytes, content_type: str) -> None:
        check_path(path)
        options: FileOptions = {
            "content-type": content_type,
            "upsert": "true",
            "cache-control": "3600",
        }
        async with self._translated("store the file"), asyncio.timeout(self._timeout_s):
            await self._bucket.upload(path, data, options)

    async def put_stream(
        self, path: str, chunks: AsyncIterator[bytes], content_type: str, *, size: int | None = None
    ) -> int:
        # Supabase takes a standard upload up to 6 MB; above that, TUS in 6 MB chunks, one in
        # memory at a time, resumed after a failed chunk.
        check_path(path)
        pieces = rechunk(chunks, CHUNK_BYTES)
        head = [await anext(pieces, b"")]
        if len(head[0]) == CHUNK_BYTES and (second := await anext(pieces, None)) is not None:
            head.append(second)
            del second
        if len(head) == 1:
            await self._post_object(path, head[0], content_type)
            return len(head[0])
        if size is not None:
            return await self._tus(path, content_type, size, chain(head, pieces))
        async with spooled(pieces) as (rest_length, rest):  # TUS needs the length first
            length = rest_length + len(head[0]) + len(head[1])
            return await self._tus(path, content_type, length, chain(head, rest))

    async def _tus(
        self, path: str, content_type: str, length: int, pieces: AsyncIterator[bytes]
    ) -> int:
        async with self._translated("store the file"):
            return await tus_upload(
                self._http,
                f"{self._url}/storage/v1/upload/resumable",
                self._auth,
                bucket=self._bucket_id,
                path=path,
                content_type=content_type,
                length=length,
                pieces=pieces,
                http_timeout=self._timeout,
                retry_delays_s=self._retry_delays_s,
            )

    async def _post_object(self, path: str, data: bytes, content_type: str) -> None:
        url = f"{self._url}/storage/v1/object/{quote(self._bucket_id, safe='')}/{quote(path)}"
        headers = {
            **self._auth,
            "content-type": content_type,
            "cache-control": "max-age=3600",
            "x-upsert": "true",
        }
        async with self._translated("store the file"):
            response = await self._http.post(
                url, content=data, headers=headers, timeout=self._timeout
            )
        if response.is_error:
            raise _refusal(response.status_code, error_message(response))

    async def remove(self, paths: Sequence[str]) -> None:
        for path in paths:
            check_path(path)
        # Storage deletes at most 1000 names per call.
        for start in range(0, len(paths), 1000):
            batch = list(paths[start : start + 1000])
            async with (
                self._translated("delete files", reads_answer=True),
                asyncio.timeout(self._timeout_s),
            ):
                await self._bucket.remove(batch)

    async def list_files(self, prefix: str) -> list[str]:
        folders, found = [prefix.strip("/")], list[str]()
        while folders:
            folder = folders.pop()
            offset = 0
            while True:
                options: ListBucketFilesOptions = {"limit": _LIST_PAGE, "offset": offset}
                async with (
                    self._translated("list files", reads_answer=True),
                    asyncio.timeout(self._timeout_s),
                ):
                    entries = await self._bucket.list(folder, options)
                    # Inside: an answer that is not a list of named entries is unreadable.
                    for entry in entries:
                        name = entry["name"]
                        if not isinstance(name, str):
                            raise TypeError(f"an entry's name is {type(name).__name__}")
                        full = f"{folder}/{name}" if folder else name
                        (folders if entry.get("id") is None else found).append(full)
                if len(entries) < _LIST_PAGE:
                    break
                offset += _LIST_PAGE
        return sorted(found)

    async def signed_url(self, path: str, expires_in_s: int) -> str:
        check_path(path)
        async with self._translated("sign a link"), asyncio.timeout(self._timeout_s):
            signed = await self._bucket.create_signed_url(path, expires_in_s)
        url = signed.get("signedURL")
        if not url:
            raise StorageUnavailable("Storage did not return a signed link.")
        return url

    async def exists(self, path: str) -> bool:
        check_path(path)
        async with self._translated("look up the file"), asyncio.timeout(self._timeout_s):
            return await self._bucket.exists(path)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    @asynccontextmanager
    async def _translated(self, action: str, *, reads_answer: bool = False) -> AsyncIterator[None]:
        from storage3.exceptions import StorageApiError
        from storage3.utils import StorageException

        try:
            yield
        except StorageApiError as exc:
            raise _refusal(exc.status, exc.message, action) from exc
        except TusError as exc:
            if exc.http_status is None:
                raise StorageUnavailable(exc.detail) from exc
            raise _refusal(exc.http_status, exc.message, action) from exc
        except (httpx.TimeoutException, TimeoutError) as exc:
            raise StorageUnavailable(f"Storage did not answer in time to {action}.") from exc
        except httpx.HTTPError as exc:
            raise StorageUnavailable(f"Could not reach storage to {action}.") from exc
        except (StorageException, ValidationError) as exc:
            raise StorageUnavailable(
                f"Storage sent an answer we could not read ({action})."
            ) from exc
        # storage3 reads any 2xx as JSON (`list`, `remove`): a gateway page or an answer of
        # another shape fails in there as one of these. Only for calls that read an answer: an
        # upload's source is the caller's, and its own failures pass through.
        except (ValueError, KeyError, TypeError) as exc:
            if not reads_answer:
                raise
            raise StorageUnavailable(
                f"Storage sent an answer we could not read ({action})."
            ) from exc


def _refusal(status: int | str, message: str, action: str = "store the file") -> StorageUnavailable:
    """Storage said no: over the size limit is final, anything else may pass."""
    kind = StorageLimitExceeded if str(status) == "413" else StorageUnavailable
    return kind(
        f"Storage refused to {action} (HTTP {status}): {message}", storage_status=str(status)
    )
