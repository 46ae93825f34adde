"""Copying a 50 MB provider output into Supabase Storage (the emulator) by TUS: time, chunks,
peak memory.

    python -m bench.tus_upload

Serves a padded 50 MB MP4 on loopback, copies it with `copy_output` into `SupabaseStorage`
against the Storage emulator (TUS, 6 MB chunks), once clean and once with the third chunk's
connection dropped (resumed after a HEAD). Prints the PATCH count, the time and the process's
peak RSS growth. The servers run in this process, so their memory counts too.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import httpx

from bench.output_copy import _peak_rss
from local.emulator_media import mp4_server
from local.secrets import api_key
from local.serve import serve
from local.supabase.faults import FaultState
from local.supabase.storage import standalone_storage_app
from local.supabase.storage_state import Bucket, StorageState
from shared.flows.outputs import copy_output
from shared.storage.supabase import SupabaseStorage

MB = 1024 * 1024
SIZE = 50 * MB
SECRET = "bench-storage-emulator-jwt-secret-0123456789"  # noqa: S105 (a local emulator)


async def _copy(source: str, storage_url: str) -> int:
    storage = SupabaseStorage(storage_url, api_key(SECRET, "service_role"), "generations")
    try:
        async with httpx.AsyncClient() as client:
            return await copy_output(
                source, storage, "bench/videos/out.mp4", client=client, max_bytes=SIZE * 2,
                timeout_s=600,
            )  # fmt: skip
    finally:
        await storage.aclose()


def _measure(source: str, url: str, state: StorageState) -> dict[str, float]:
    state.patch_sizes.clear()
    with _peak_rss() as rss:
        started = time.perf_counter()
        copied = asyncio.run(_copy(source, url))
        elapsed = time.perf_counter() - started
    return {
        "bytes": copied,
        "patches": len(state.patch_sizes),
        "seconds": round(elapsed, 3),
        "peak_rss_growth_mb": round(rss["peak_rss_growth_mb"], 1),
    }


def run() -> dict[str, dict[str, float]]:
    faults = FaultState()
    with tempfile.TemporaryDirectory() as tmp, serve(mp4_server()) as source_url:
        app, state = standalone_storage_app(
            Path(tmp), SECRET, faults=faults, buckets=(Bucket("generations"),)
        )
        with serve(app) as url:
            source = f"{source_url}/output.mp4?size={SIZE}"
            asyncio.run(_copy(f"{source_url}/output.mp4?size={MB}", url))  # warm-up
            clean = _measure(source, url, state)
            faults.change({"drop_rate": 1.0, "methods": ["PATCH"], "skip": 2, "times": 1})
            dropped = _measure(source, url, state)
    return {"clean": clean, "dropped_chunk": dropped}


if __name__ == "__main__":
    for name, figures in run().items():
        print(f"tus_upload_{name}: {figures}")
