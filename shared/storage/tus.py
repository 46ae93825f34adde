"""Resumable uploads to Supabase Storage: the TUS 1.0.0 protocol, in 6 MB chunks.

Supabase asks for TUS above 6 MB (and only takes 6 MB chunks): a standard upload of a large
file is one long request that a network blip or a gateway restarts from zero. Here the source
is re-cut into 6 MB chunks, one in memory at a time; a chunk that fails (network error, 5xx,
an offset conflict) is followed by a HEAD that tells where the server got to, and the upload
goes on from there, a bounded number of times. An upload that gives up is terminated
(DELETE) so nothing half-written lingers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

import httpx

CHUNK_BYTES = 6 * 1024 * 1024
TUS_VERSION = "1.0.0"
_OFFSET_TYPE = "application/offset+octet-stream"
_SEND_BYTES = 1024 * 1024
_RESYNC = frozenset({409, 423, 460})  # offset conflict / locked: ask HEAD and go on


class TusError(Exception):
    """The resumable upload failed; `http_status` is the status that ended it, if any."""

    def __init__(self, detail: str, *, http_status: int | None = None, message: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.http_status = http_status
        self.message = message


async def rechunk(chunks: AsyncIterator[bytes], size: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
    """`chunks` regrouped into pieces of exactly `size` bytes (the last may be shorter).

    Each piece is built by one join of the parts it is made of: about one piece in memory
    besides the one the consumer holds."""
    parts: list[bytes] = []
    held = 0
    async for chunk in chunks:
        while held + len(chunk) >= size:
            need = size - held
            parts.append(chunk[:need])
            chunk = chunk[need:]
            piece = b"".join(parts)
            parts, held = [], 0
            yield piece
            del piece
        if chunk:
            parts.append(chunk)
            held += len(chunk)
    if parts:
        yield b"".join(parts)


def _metadata(fields: Mapping[str, str]) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in fields.items())


async def tus_upload(
    http: httpx.AsyncClient,
    endpoint: str,
    headers: Mapping[str, str],
    *,
    bucket: str,
    path: str,
    content_type: str,
    length: int,
    pieces: AsyncIterator[bytes],
    http_timeout: httpx.Timeout,
    retry_delays_s: Sequence[float] = (0.5, 2.0, 5.0),
) -> int:
    """Create an upload of `length` bytes at `endpoint` and send `pieces` (CHUNK_BYTES each);
    return the bytes sent. Raises TusError for a refusal or when the retries ran out."""
    base = {**headers, "Tus-Resumable": TUS_VERSION}
    create_headers = {
        **base,
        "Upload-Length": str(length),
        "Upload-Metadata": _metadata(
            {
                "bucketName": bucket,
                "objectName": path,
                "contentType": content_type,
                "cacheControl": "3600",
            }
        ),
        "x-upsert": "true",
    }
    created = await http.post(endpoint, headers=create_headers, timeout=http_timeout)
    if created.status_code != 201 or "location" not in created.headers:
        raise _refused("create the upload", created)
    location = str(created.url.join(created.headers["location"]))
    try:
        offset = 0
        async for piece in pieces:
            if offset + len(piece) > length:
                raise TusError(f"The source has more than the {length} bytes announced.")
            offset = await _send_piece(
                http, location, base, piece, offset, http_timeout, retry_delays_s
            )
            del piece  # let it go before the next one is cut
        if offset != length:
            raise TusError(f"The source had {offset} bytes, not the {length} announced.")
        return offset
    except BaseException:
        with contextlib.suppress(httpx.HTTPError):
            await http.delete(location, headers=base, timeout=http_timeout)
        raise


async def _send_piece(
    http: httpx.AsyncClient,
    location: str,
    base: Mapping[str, str],
    piece: bytes,
    start: int,
    http_timeout: httpx.Timeout,
    retry_delays_s: Sequence[float],
) -> int:
    """PATCH `piece` (which belongs at `start`) until the server has all of it; the new offset.

    After a failure the server's offset comes from HEAD: it may hold part of the chunk."""
    offset, failures, resync = start, 0, False
    while True:
        try:
            if resync:
                head = await http.head(location, headers=base, timeout=http_timeout)
                _raise_unless_transient(head, 200, "resume the upload")
                offset, resync = _offset(head), False
                if not start <= offset <= start + len(piece):
                    raise TusError(f"The server is at byte {offset}, outside the chunk resent.")
            if offset >= start + len(piece):
                return offset
            rest = memoryview(piece)[offset - start :]
            patch_headers = {
                **base,
                "Upload-Offset": str(offset),
                "Content-Type": _OFFSET_TYPE,
                "Content-Length": str(len(rest)),
            }
            response = await http.patch(
                location, content=_blocks(rest), headers=patch_headers, timeout=http_timeout
            )
            _raise_unless_transient(response, 204, "store a chunk")
            offset = _offset(response)
            continue
        except httpx.TransportError as exc:
            problem = type(exc).__name__
        except _Transient as exc:
            problem = str(exc)
        if failures >= len(retry_delays_s):
            raise TusError(f"A chunk at byte {offset} kept failing ({problem}); gave up.")
        await asyncio.sleep(retry_delays_s[failures])
        failures += 1
        resync = True


async def _blocks(data: memoryview) -> AsyncIterator[bytes]:
    """`data` in 1 MB blocks. Not the chunk itself as `content`: httpx's request and response
    refer to each other, so the chunk would live on until a garbage collection, and memory
    would grow by 6 MB a chunk; a finished generator lets go at once."""
    for at in range(0, len(data), _SEND_BYTES):
        yield bytes(data[at : at + _SEND_BYTES])


class _Transient(Exception):
    """A 5xx or an offset conflict: worth a HEAD and another try."""


def _raise_unless_transient(response: httpx.Response, expected: int, action: str) -> None:
    status = response.status_code
    if status == expected:
        return
    if status >= 500 or status in _RESYNC:
        raise _Transient(f"HTTP {status}")
    raise _refused(action, response)


def _offset(response: httpx.Response) -> int:
    raw = response.headers.get("upload-offset", "")
    if not raw.isdigit():
        raise TusError("Storage sent no valid Upload-Offset.")
    return int(raw)


def _refused(action: str, response: httpx.Response) -> TusError:
    message = error_message(response)
    return TusError(
        f"Storage refused to {action} (HTTP {response.status_code}): {message}",
        http_status=response.status_code,
        message=message,
    )


def error_message(response: httpx.Response) -> str:
    """Storage's error message (`{"statusCode", "error", "message"}`), or the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])[:200]
    return response.text[:200]


async def chain(head: list[bytes], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """`head`'s pieces, then `rest`'s; each piece is let go once sent (only one 6 MB chunk is
    held at a time)."""
    while head:
        yield head.pop(0)
    async for piece in rest:
        yield piece


@asynccontextmanager
async def spooled(
    pieces: AsyncIterator[bytes],
) -> AsyncIterator[tuple[int, AsyncIterator[bytes]]]:
    """A stream of unknown length, written to a temporary file: (its size, a
    reader giving it back in CHUNK_BYTES pieces). The file is gone when the context ends."""
    spool = await asyncio.to_thread(tempfile.TemporaryFile)
    try:
        size = 0
        async for piece in pieces:
            size += len(piece)
            await asyncio.to_thread(spool.write, piece)
        await asyncio.to_thread(spool.seek, 0)

        async def read_back() -> AsyncIterator[bytes]:
            while piece := await asyncio.to_thread(spool.read, CHUNK_BYTES):
                yield piece

        yield size, read_back()
    finally:
        await asyncio.to_thread(spool.close)
