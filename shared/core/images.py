"""Checks on the image a user uploads for image-to-video.

An image is judged by its bytes, never by its file name or declared type: the magic bytes must
say JPEG, PNG or WebP (anything else is 415), and Pillow must decode the whole of it within sane
dimensions (a damaged file or odd size is 422). Reading the upload itself (bounded, 413) is
shared.web.uploads.
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import hashlib
import io
import struct
from dataclasses import dataclass
from typing import Literal

from PIL import Image

from shared.core.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType

ImageFormat = Literal["jpeg", "png", "webp"]

# format -> (Pillow's name, content type, file extension)
_FORMATS: dict[ImageFormat, tuple[str, str, str]] = {
    "jpeg": ("JPEG", "image/jpeg", "jpg"),
    "png": ("PNG", "image/png", "png"),
    "webp": ("WEBP", "image/webp", "webp"),
}
# What Pillow raises on a damaged file: it has no single error type of its own.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)


@dataclass(frozen=True)
class ImageInfo:
    """A checked image: what it is (from its bytes) and how big."""

    format: ImageFormat
    content_type: str
    extension: str  # without the dot: "jpg", "png", "webp"
    width: int
    height: int
    size: int
    sha256: str


def sniff(data: bytes) -> ImageFormat:
    """The format the magic bytes say; UnsupportedMediaType for anything but JPEG, PNG, WebP."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    raise UnsupportedMediaType(
        f"The image must be a JPEG, PNG or WebP file (this looks like {_describe(data)})."
    )


def _describe(data: bytes) -> str:
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "a GIF"
    if data.startswith(b"BM"):
        return "a BMP image"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "a TIFF image"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"avif", b"avis"):
            return "an AVIF image"
        if brand in (b"heic", b"heix", b"mif1", b"msf1", b"hevc"):
            return "a HEIC image"
        return "a video"
    if data.startswith(b"%PDF"):
        return "a PDF"
    if data.lstrip().startswith(b"<"):
        return "an SVG or HTML document"
    head = data[:512]
    try:
        # Incremental, so a character cut at the end of the sample is not a decode error.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "an unknown kind of file"
    return "an unknown kind of file" if b"\x00" in head else "text"


def inspect_image(
    data: bytes, *, max_pixels: int = 40_000_000, max_side: int = 8192, min_side: int = 64
) -> ImageInfo:
    """Check `data` is a whole JPEG, PNG or WebP image of sane size, and describe it.

    Raises UnsupportedMediaType (415) for another kind of file, InvalidInput (422) for an empty,
    damaged or truncated image, or one outside the size limits. Decodes every pixel: CPU work,
    so async code calls `inspect_image_async`.
    """
    if not data:
        raise InvalidInput("The image is empty.")
    fmt = sniff(data)
    pillow_name, content_type, extension = _FORMATS[fmt]
    too_many = f"The image has too many pixels (at most {max_pixels / 1e6:g} megapixels)."
    try:
        # Only the sniffed format's decoder: the bytes already said what this must be.
        with Image.open(io.BytesIO(data), formats=[pillow_name]) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise InvalidInput(too_many, width=width, height=height)
            if not (min_side <= width <= max_side and min_side <= height <= max_side):
                raise InvalidInput(
                    f"The image must be between {min_side} and {max_side} pixels on each side "
                    f"(this one is {width}x{height}).",
                    width=width,
                    height=height,
                )
            image.load()  # decode every pixel: a truncated or corrupt file fails here
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard (Image.MAX_IMAGE_PIXELS) fires on the header, before any decoding.
        raise InvalidInput(too_many) from exc
    except _DECODE_ERRORS as exc:
        raise InvalidInput("The image is damaged or incomplete.") from exc
    return ImageInfo(
        format=fmt,
        content_type=content_type,
        extension=extension,
        width=width,
        height=height,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


async def inspect_image_async(
    data: bytes, *, max_pixels: int = 40_000_000, max_side: int = 8192, min_side: int = 64
) -> ImageInfo:
    """`inspect_image` in a worker thread, so decoding never blocks the event loop."""
    return await asyncio.to_thread(
        inspect_image, data, max_pixels=max_pixels, max_side=max_side, min_side=min_side
    )


def too_large(max_bytes: int) -> PayloadTooLarge:
    mb = max_bytes / (1024 * 1024)
    limit = f"{mb:g} MB" if max_bytes >= 1024 * 1024 else f"{max_bytes // 1024} KB"
    return PayloadTooLarge(f"The image is larger than {limit}.", limit_bytes=max_bytes)


def data_url(data: bytes, content_type: str) -> str:
    """`data:<type>;base64,...`: how Replicate takes a small file inline."""
    return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"
