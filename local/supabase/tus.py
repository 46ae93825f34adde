"""Storage's resumable uploads: the TUS 1.0.0 protocol at /upload/resumable, as Supabase serves it.

    POST  /upload/resumable        Upload-Length, Upload-Metadata (base64 bucketName, objectName,
                                   contentType, cacheControl), x-upsert -> 201 Location
    HEAD  /upload/resumable/{id}   Upload-Offset, Upload-Length: where to resume
    PATCH /upload/resumable/{id}   Upload-Offset + application/offset+octet-stream -> 204
    DELETE /upload/resumable/{id}  termination

Every request carries `Tus-Resumable: 1.0.0` (412 otherwise). A chunk whose offset is not the
server's is a 409; bytes received before a connection dropped are kept, as tus servers do, so
HEAD tells a client where to go on. The bucket's size limit is checked at creation, from
Upload-Length (413, before a byte is sent). The object appears under its name only when the
last byte arrived.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import uuid
from pathlib import Path

from fastapi import APIRouter, Request, Response
from starlette.requests import ClientDisconnect

from local.supabase.storage_state import StorageError, StorageState, Upload, too_large
from shared.storage.port import check_path

TUS_VERSION = "1.0.0"
_TUS = {"Tus-Resumable": TUS_VERSION}
_OFFSET_TYPE = "application/offset+octet-stream"


def _header_int(request: Request, name: str) -> int:
    raw = request.headers.get(name, "")
    if not raw.isdigit() or len(raw) > 15:
        raise StorageError(400, "InvalidRequest", f"{name} header is missing or invalid")
    return int(raw)


def _metadata(raw: str) -> dict[str, str]:
    """`key base64,key base64`, the TUS Upload-Metadata header."""
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        key, _, value = item.partition(" ")
        try:
            pairs[key] = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise StorageError(
                400, "InvalidRequest", f"Upload-Metadata {key} is not base64"
            ) from None
    return pairs


def _check_version(request: Request) -> None:
    if request.headers.get("tus-resumable") != TUS_VERSION:
        raise StorageError(412, "InvalidRequest", "Unsupported TUS version")


def tus_router(state: StorageState) -> APIRouter:
    router = APIRouter()

    def upload_for(upload_id: str) -> Upload:
        upload = state.uploads.get(upload_id)
        if upload is None:
            raise StorageError(404, "NoSuchUpload", "Upload not found")
        return upload

    @router.options("/upload/resumable")
    async def capabilities() -> Response:
        headers = {**_TUS, "Tus-Version": TUS_VERSION, "Tus-Extension": "creation,termination"}
        return Response(status_code=204, headers=headers)

    @router.post("/upload/resumable")
    async def create(request: Request) -> Response:
        _check_version(request)
        length = _header_int(request, "upload-length")
        meta = _metadata(request.headers.get("upload-metadata", ""))
        if not meta.get("bucketName") or not meta.get("objectName"):
            raise StorageError(400, "InvalidRequest", "bucketName and objectName are required")
        bucket = state.bucket(meta["bucketName"])
        try:
            name = check_path(meta["objectName"])
        except ValueError:
            raise StorageError(400, "InvalidKey", "Invalid key") from None
        upsert = request.headers.get("x-upsert") == "true"
        state.check_new(bucket, name, upsert=upsert, size=length)
        upload_id = base64.urlsafe_b64encode(f"{bucket.id}/{name}/{uuid.uuid4()}".encode()).decode()
        temp = state.root / ".tus" / upload_id.rstrip("=")
        await asyncio.to_thread(_create_empty, temp)
        state.uploads[upload_id] = Upload(
            upload_id,
            bucket,
            name,
            length,
            meta.get("contentType") or "application/octet-stream",
            upsert,
            temp,
        )
        # Relative to the URL the client used, whatever prefix the emulator is mounted under.
        location = f"{str(request.url.replace(query='')).rstrip('/')}/{upload_id}"
        return Response(status_code=201, headers={**_TUS, "Location": location})

    @router.head("/upload/resumable/{upload_id}")
    async def offset(upload_id: str, request: Request) -> Response:
        _check_version(request)
        upload = upload_for(upload_id)
        async with upload.lock:
            headers = {
                **_TUS,
                "Upload-Offset": str(upload.offset),
                "Upload-Length": str(upload.length),
                "Cache-Control": "no-store",
            }
        return Response(status_code=200, headers=headers)

    @router.patch("/upload/resumable/{upload_id}")
    async def append(upload_id: str, request: Request) -> Response:
        _check_version(request)
        if request.headers.get("content-type", "").split(";")[0].strip() != _OFFSET_TYPE:
            raise StorageError(415, "InvalidRequest", f"Content-Type must be {_OFFSET_TYPE}")
        upload = upload_for(upload_id)
        claimed = _header_int(request, "upload-offset")
        async with upload.lock:
            if claimed != upload.offset:
                raise StorageError(409, "InvalidRequest", "Upload-Offset does not match")
            received = await _receive(request, upload)
            state.patch_sizes.append(received)
            if upload.offset == upload.length:
                del state.uploads[upload_id]
                state.put(
                    upload.bucket, upload.name, upload.temp, upload.content_type, upload.upsert
                )
        return Response(status_code=204, headers={**_TUS, "Upload-Offset": str(upload.offset)})

    @router.delete("/upload/resumable/{upload_id}")
    async def terminate(upload_id: str, request: Request) -> Response:
        _check_version(request)
        upload = state.uploads.pop(upload_id, None)
        if upload is None:
            raise StorageError(404, "NoSuchUpload", "Upload not found")
        await asyncio.to_thread(upload.temp.unlink, missing_ok=True)
        return Response(status_code=204, headers=_TUS)

    return router


async def _receive(request: Request, upload: Upload) -> int:
    """Append the body at the upload's offset; keep what arrived if the client went away."""
    received = 0
    handle = await asyncio.to_thread(open, upload.temp, "ab")
    try:
        with contextlib.suppress(ClientDisconnect):
            async for block in request.stream():
                if upload.offset + len(block) > upload.length:
                    raise too_large()
                await asyncio.to_thread(handle.write, block)
                upload.offset += len(block)
                received += len(block)
    finally:
        await asyncio.to_thread(handle.close)
    return received


def _create_empty(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
