"""Copy a finished video from the provider's URL into our storage.

Replicate deletes the outputs of API predictions after an hour, so a completed generation's
video is copied as soon as it is known. The copy streams: one network chunk at a time goes from
the provider to storage, so memory does not grow with the video's size. It refuses anything that
is not a video, or that is (or grows) larger than the cap, and stops reading at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx

from shared.core.errors import AppError, JsonValue
from shared.storage.port import Storage

VIDEO_CONTENT_TYPE = "video/mp4"
_FETCH_TIMEOUT = httpx.Timeout(30.0, connect=10.0)  # per connect / read, not the whole copy
_SNIFF_BYTES = 8  # an MP4 starts with a box: 32-bit size, then the type `ftyp`
_GONE = frozenset({404, 410})
_TRANSIENT = frozenset({408, 425, 429})


class OutputCopyError(AppError):
    """The provider's video could not be copied into storage.

    `retryable` says whether trying again later can help: True for provider 5xx, timeouts and
    network failures; False when the provider no longer has the file (404/410) or sent something
    we refuse (not a video, too large).
    """

    code = "output_copy_failed"
    status = 502
    default_detail = "Could not copy the video from the provider."

    def __init__(self, detail: str, *, retryable: bool, **extra: JsonValue) -> None:
        super().__init__(detail)
        self.extra.update(extra)
        self.retryable = retryable


async def copy_output(
    source_url: str,
    storage: Storage,
    path: str,
    *,
    client: httpx.AsyncClient,
    max_bytes: int,
    timeout_s: float,
) -> int:
    """Stream `source_url` into `storage` at `path` (as video/mp4); return the bytes copied.

    Raises OutputCopyError (see `retryable`) for anything wrong with the source, and whatever
    the storage raises (StorageUnavailable) for trouble on our side. On any failure nothing is
    left under `path`. The whole copy is bounded by `timeout_s`.
    """
    _check_url(source_url)
    try:
        async with (
            asyncio.timeout(timeout_s),
            client.stream(
                "GET", source_url, follow_redirects=True, timeout=_FETCH_TIMEOUT
            ) as response,
        ):
            sniff = _check_headers(response, max_bytes)
            return await storage.put_stream(
                path, _body(response, max_bytes, sniff=sniff), VIDEO_CONTENT_TYPE
            )
    except TimeoutError as exc:
        raise OutputCopyError(
            f"Copying the video took longer than {timeout_s:g} s.", retryable=True
        ) from exc
    except httpx.HTTPError as exc:
        raise _network_error(exc) from exc


def _check_url(source_url: str) -> None:
    """The URL came from the provider: outside input. Refuse what httpx would choke on."""
    try:
        url = httpx.URL(source_url)
    except httpx.InvalidURL as exc:
        raise OutputCopyError("The video URL is not valid.", retryable=False) from exc
    port_ok = url.port is None or 0 < url.port < 65536
    if url.scheme not in ("http", "https") or not url.host or not port_ok:
        raise OutputCopyError("The video URL is not valid.", retryable=False)


def _check_headers(response: httpx.Response, max_bytes: int) -> bool:
    """Refuse a bad status, type or declared size; True if the first bytes must be checked."""
    status = response.status_code
    if status in _GONE:
        raise OutputCopyError(
            f"The provider no longer has the video (HTTP {status}).",
            retryable=False,
            source_status=status,
        )
    if not response.is_success:
        raise OutputCopyError(
            f"The provider answered HTTP {status} for the video.",
            retryable=status >= 500 or status in _TRANSIENT,
            source_status=status,
        )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type.startswith("video/"):
        return False
    if content_type in ("application/octet-stream", ""):
        return True  # a generic type: the bytes must show an MP4
    raise OutputCopyError(
        f"The provider sent {content_type!r} instead of a video.",
        retryable=False,
        content_type=content_type,
    )


async def _body(response: httpx.Response, max_bytes: int, *, sniff: bool) -> AsyncIterator[bytes]:
    """The response body, checked as it streams; source failures become OutputCopyError here,
    so the storage adapter (which consumes this) never mistakes them for its own."""
    total = 0
    head = b""
    try:
        async for chunk in response.aiter_bytes():
            total += len(chunk)
            if total > max_bytes:
                raise _too_large(max_bytes)
            if sniff:
                head += chunk
                if len(head) < _SNIFF_BYTES:
                    continue
                _require_mp4(head)
                sniff, chunk, head = False, head, b""
            yield chunk
    except httpx.HTTPError as exc:
        raise _network_error(exc) from exc
    if total == 0:
        raise OutputCopyError("The provider sent an empty file.", retryable=False)
    if sniff:  # the whole body was shorter than an MP4 box header
        _require_mp4(head)


def _require_mp4(head: bytes) -> None:
    if head[4:8] != b"ftyp":
        raise OutputCopyError("The provider sent a file that is not an MP4 video.", retryable=False)


def _too_large(max_bytes: int) -> OutputCopyError:
    return OutputCopyError(
        f"The video is larger than {max_bytes / (1024 * 1024):g} MB.",
        retryable=False,
        limit_bytes=max_bytes,
    )


def _network_error(exc: httpx.HTTPError) -> OutputCopyError:
    if isinstance(exc, httpx.TimeoutException):
        return OutputCopyError("The provider did not send the video in time.", retryable=True)
    return OutputCopyError("Could not fetch the video from the provider.", retryable=True)
