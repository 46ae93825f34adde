"""The video the emulator serves as every prediction's output.

`sample.mp4` is a 2-second 256x144 H.264 (yuv420p, baseline, faststart) clip made once with
ffmpeg's testsrc2. Larger outputs are the same file followed by one top-level `free` box: MP4
readers skip `free` boxes, so the padded file is still a valid, playable MP4 of any size.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

SAMPLE_PATH = Path(__file__).with_name("sample.mp4")
CHUNK_BYTES = 256 * 1024
_BOX_HEADER = 8  # 32-bit size + type
_LARGE_BOX_HEADER = 16  # size field 1 + type + 64-bit size


@cache
def sample_mp4() -> bytes:
    """The sample clip's bytes (read once)."""
    return SAMPLE_PATH.read_bytes()


def padded_size(requested: int) -> int:
    """The size actually served for `requested` bytes (0 = natural size).

    Never smaller than the sample; a gap too small for a box header is rounded up to one.
    """
    natural = len(sample_mp4())
    if requested <= natural:
        return natural
    return max(requested, natural + _BOX_HEADER)


def mp4_chunks(requested: int) -> Iterator[bytes]:
    """The served file in chunks of at most CHUNK_BYTES, never whole in memory."""
    sample = sample_mp4()
    yield sample
    padding = padded_size(requested) - len(sample)
    if padding == 0:
        return
    if padding <= 0xFFFFFFFF:
        header = struct.pack(">I4s", padding, b"free")
    else:  # a box over 4 GiB uses the 64-bit `largesize` form
        header = struct.pack(">I4sQ", 1, b"free", padding)
    yield header
    remaining = padding - len(header)
    zeros = bytes(CHUNK_BYTES)
    while remaining > 0:
        n = min(remaining, CHUNK_BYTES)
        yield zeros if n == CHUNK_BYTES else bytes(n)
        remaining -= n


def mp4_server() -> FastAPI:
    """`GET /output.mp4?size=N`: a padded MP4 of N bytes streamed with its Content-Length, as
    a provider's output URL serves it (for tests and benchmarks of the copy into storage)."""
    from fastapi import FastAPI
    from fastapi.responses import StreamingResponse

    app = FastAPI()

    @app.get("/output.mp4")
    async def output(size: int) -> StreamingResponse:
        headers = {"Content-Length": str(padded_size(size))}
        return StreamingResponse(mp4_chunks(size), media_type="video/mp4", headers=headers)

    return app


def top_level_boxes(data: bytes) -> list[tuple[str, int]]:
    """(type, size) of each top-level box; raises ValueError unless they tile `data` exactly."""
    boxes: list[tuple[str, int]] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < _BOX_HEADER:
            raise ValueError(f"truncated box header at {offset}")
        size, kind = struct.unpack_from(">I4s", data, offset)
        if size == 1:
            if len(data) - offset < _LARGE_BOX_HEADER:
                raise ValueError(f"truncated large box header at {offset}")
            (size,) = struct.unpack_from(">Q", data, offset + _BOX_HEADER)
        if size < _BOX_HEADER or offset + size > len(data):
            raise ValueError(f"bad box size {size} at {offset}")
        boxes.append((kind.decode("latin-1"), size))
        offset += size
    return boxes
