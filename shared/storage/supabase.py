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

from shared.storage.port import StorageUnavailable, check_path

_REMOVE_BATCH = 100  # names per Storage delete request
_LIST_PAGE = 1000
_LIST_DEPTH = 4  # our layout is {user}/{videos|inputs}/{file}

if TYPE_CHECKING:
    from storage3._async.file_api import AsyncBucketProxy
    from storage3.types import FileOptions


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
    ) -> None:
        from supabase import AsyncClient, AsyncClientOptions

        self._owns_http = http is None
        # One client for supabase-py and our streaming uploads; its timeouts bound every call.
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(timeout_s, connect=5.0))
        self._timeout = httpx.Timeout(timeout_s, connect=5.0)
        self._timeout_s = timeout_s
        self._url = url.rstrip("/")
        self._key = service_role_key
        self._bucket_id = bucket
        client = AsyncClient(
            self._url, service_role_key, AsyncClientOptions(httpx_client=self._http)
        )
        self._bucket: AsyncBucketProxy = client.storage.from_(bucket)

    async def put_bytes(self, path: str, data: bytes, content_type: str) -> None:
        check_path(path)
        options: FileOptions = {
            "content-type": content_type,
            "upsert": "true",
            "cache-control": "3600",
        }
        async with self._translated("store the file"), asyncio.timeout(self._timeout_s):
            await self._bucket.upload(path, data, options)

    async def put_stream(self, path: str, chunks: AsyncIterator[bytes], content_type: str) -> int:
        # storage3's upload wants bytes or a sync file object (multipart); an async iterator
        # as the body makes httpx send it chunked, one chunk in memory at a time.
        check_path(path)
        written = 0

        async def counted() -> AsyncIterator[bytes]:
            nonlocal written
            async for chunk in chunks:
                written += len(chunk)
                yield chunk

        url = f"{self._url}/storage/v1/object/{quote(self._bucket_id, safe='')}/{quote(path)}"
        headers = {
            "Authorization": f"Bearer {self._key}",
            "apikey": self._key,
            "content-type": content_type,
            "cache-control": "max-age=3600",
            "x-upsert": "true",
        }
        async with self._translated("store the file"):
            response = await self._http.post(
                url, content=counted(), headers=headers, timeout=self._timeout
            )
        if response.is_error:
            raise StorageUnavailable(
                f"Storage refused the upload (HTTP {response.status_code}): {_message(response)}",
                storage_status=str(response.status_code),
            )
        return written

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

    async def remove(self, paths: Sequence[str]) -> None:
        for path in paths:
            check_path(path)
        # Storage deletes a list of names per request; keep each request small.
        for start in range(0, len(paths), _REMOVE_BATCH):
            batch = list(paths[start : start + _REMOVE_BATCH])
            async with self._translated("delete files"), asyncio.timeout(self._timeout_s):
                await self._bucket.remove(batch)

    async def list_files(self, folder: str) -> list[str]:
        # Storage lists one folder level per call (subfolders come back without an id).
        found: list[str] = []
        pending = [(check_path(folder.rstrip("/")), 0)]
        while pending:
            current, depth = pending.pop()
            offset = 0
            while True:
                async with self._translated("list files"), asyncio.timeout(self._timeout_s):
                    entries = await self._bucket.list(
                        current, {"limit": _LIST_PAGE, "offset": offset}
                    )
                for entry in entries:
                    name = entry.get("name")
                    if not isinstance(name, str) or not name:
                        continue
                    if entry.get("id") is not None:
                        found.append(f"{current}/{name}")
                    elif depth < _LIST_DEPTH:
                        pending.append((f"{current}/{name}", depth + 1))
                if len(entries) < _LIST_PAGE:
                    break
                offset += _LIST_PAGE
        return found

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    @asynccontextmanager
    async def _translated(self, action: str) -> AsyncIterator[None]:
        from storage3.exceptions import StorageApiError
        from storage3.utils import StorageException

        try:
            yield
        except StorageApiError as exc:
            raise StorageUnavailable(
                f"Storage refused to {action} ({exc.status}): {exc.message}",
                storage_status=str(exc.status),
            ) from exc
        except (httpx.TimeoutException, TimeoutError) as exc:
            raise StorageUnavailable(f"Storage did not answer in time to {action}.") from exc
        except httpx.HTTPError as exc:
            raise StorageUnavailable(f"Could not reach storage to {action}.") from exc
        except (StorageException, ValidationError) as exc:
            raise StorageUnavailable(
                f"Storage sent an answer we could not read ({action})."
            ) from exc


def _message(response: httpx.Response) -> str:
    """Storage's error message (`{"statusCode", "error", "message"}`), or the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])[:200]
    return response.text[:200]
