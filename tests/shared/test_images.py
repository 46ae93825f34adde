"""Image checks: judged by the bytes, decoded whole, read within the upload limit."""

from __future__ import annotations

import base64
import hashlib
import io
import struct
import zlib

import pytest
from PIL import Image
from starlette.datastructures import UploadFile

from shared.core.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from shared.core.images import data_url, inspect_image, inspect_image_async
from shared.web.uploads import read_upload

MB = 1024 * 1024


def make_image(fmt: str, size: tuple[int, int] = (96, 80), mode: str = "RGB") -> bytes:
    image = Image.new("RGB", size)
    image.putdata([(x * 7 % 256, x * 13 % 256, x % 256) for x in range(size[0] * size[1])])
    out = io.BytesIO()
    image.convert(mode).save(out, fmt)
    return out.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG's signature, IHDR and the start of its IDAT: all a decompression bomb shows
    before its pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(64)))


class CountingFile(io.BytesIO):
    """A file that remembers how many bytes were read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1, /) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


@pytest.mark.parametrize(
    ("fmt", "expected", "content_type", "extension"),
    [
        ("PNG", "png", "image/png", "png"),
        ("JPEG", "jpeg", "image/jpeg", "jpg"),
        ("WEBP", "webp", "image/webp", "webp"),
    ],
)
def test_real_images_are_accepted_with_their_dimensions(
    fmt: str, expected: str, content_type: str, extension: str
) -> None:
    data = make_image(fmt, (96, 80))
    info = inspect_image(data)
    assert info.format == expected
    assert (info.content_type, info.extension) == (content_type, extension)
    assert (info.width, info.height) == (96, 80)
    assert info.size == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()


async def test_async_inspection_gives_the_same_answer() -> None:
    data = make_image("PNG")
    assert await inspect_image_async(data) == inspect_image(data)


def test_format_comes_from_the_bytes_not_a_claim() -> None:
    # A JPEG is a JPEG whatever the upload said; nothing here takes a name or declared type.
    assert inspect_image(make_image("JPEG")).content_type == "image/jpeg"


def test_garbage_behind_png_magic_is_damaged() -> None:
    data = b"\x89PNG\r\n\x1a\n" + b"this is only text pretending to be a picture" * 10
    with pytest.raises(InvalidInput, match="damaged or incomplete") as caught:
        inspect_image(data)
    assert caught.value.status == 422


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_truncated_image_is_damaged(fmt: str) -> None:
    data = make_image(fmt, (200, 150))
    with pytest.raises(InvalidInput, match="damaged or incomplete"):
        inspect_image(data[: len(data) * 2 // 3])


def test_gif_is_unsupported_media_type() -> None:
    with pytest.raises(UnsupportedMediaType, match=r"JPEG, PNG or WebP.*a GIF") as caught:
        inspect_image(make_image("GIF", mode="P"))
    assert caught.value.status == 415


@pytest.mark.parametrize(
    ("data", "described"),
    [
        (b"just some notes, not a picture\n", "text"),
        (b"BM" + bytes(100), "a BMP image"),
        (b"II*\x00" + bytes(100), "a TIFF image"),
        (b"%PDF-1.7\n", "a PDF"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "an SVG or HTML document"),
        (b"\x00\x00\x00\x18ftypheic" + bytes(20), "a HEIC image"),
        (b"\x00\x01\x02\xfe\xff" * 10, "an unknown kind of file"),
    ],
)
def test_other_files_are_unsupported_media_type(data: bytes, described: str) -> None:
    with pytest.raises(UnsupportedMediaType, match=f"this looks like {described}"):
        inspect_image(data)


def test_empty_file_is_invalid() -> None:
    with pytest.raises(InvalidInput, match="empty"):
        inspect_image(b"")


def test_too_small_image_is_invalid_and_says_the_limits() -> None:
    with pytest.raises(InvalidInput, match=r"between 64 and 8192 pixels.*10x10") as caught:
        inspect_image(make_image("PNG", (10, 10)))
    assert caught.value.status == 422


def test_too_long_a_side_is_invalid() -> None:
    wide = Image.new("L", (9000, 64))
    out = io.BytesIO()
    wide.save(out, "PNG")
    with pytest.raises(InvalidInput, match="9000x64"):
        inspect_image(out.getvalue())


def test_too_many_pixels_is_invalid() -> None:
    with pytest.raises(InvalidInput, match="too many pixels"):
        inspect_image(make_image("PNG", (200, 200)), max_pixels=100 * 100)


@pytest.mark.parametrize("side", [7_000, 12_000, 30_000])
def test_decompression_bomb_is_refused_from_its_header(side: int) -> None:
    with pytest.raises(InvalidInput, match="too many pixels"):
        inspect_image(png_header(side, side))


async def test_upload_within_the_limit_is_read_whole() -> None:
    data = make_image("PNG")
    assert await read_upload(UploadFile(io.BytesIO(data)), max_bytes=10 * MB) == data


async def test_oversized_upload_stops_reading_past_the_limit() -> None:
    source = CountingFile(b"\xff" * (11 * MB))
    with pytest.raises(PayloadTooLarge, match=r"^The image is larger than 10 MB\.$") as caught:
        await read_upload(UploadFile(source), max_bytes=10 * MB)
    assert caught.value.status == 413
    assert source.bytes_read <= 10 * MB + 64 * 1024


async def test_declared_oversize_is_refused_without_reading() -> None:
    source = CountingFile(b"\xff" * (2 * MB))
    with pytest.raises(PayloadTooLarge, match="larger than 1 MB"):
        await read_upload(UploadFile(source, size=2 * MB), max_bytes=1 * MB)
    assert source.bytes_read == 0


def test_data_url_carries_the_type_and_base64_bytes() -> None:
    url = data_url(b"\x89PNG\x00\x01", "image/png")
    assert url == "data:image/png;base64," + base64.b64encode(b"\x89PNG\x00\x01").decode()
