"""Copying a 50 MB provider output into Supabase Storage (the emulator) by TUS: time, chunks,
peak memory.

    python -m bench.tus_upload

Serves a padded 50 MB MP4 on loopback, copies it with `copy_output` into `SupabaseStorage`
against the Storage emulator (TUS, 6 MB chunks), once clean and once with the third chunk's
connection dropped (resumed after a HEAD). Prints the PATCH count, the time and the process's
peak RSS growth. The servers run in this process, so their memory counts too.

Figures (`python -m bench tus_upload`, REPEATS fresh processes, as bench output_copy does):
- tus_upload_peak_rss_growth: the larger of the two copies' peak RSS growth, median over the
  repeats. Target: < 64 MB, output_copy's bound (a TUS copy streams 6 MB chunks, it must not
  hold the video).
- tus_upload_patches: PATCH requests of the clean copy and of the one with a dropped chunk.
  Target: exactly ceil(50 MB / 6 MB) = 9 clean and one more with the dropped chunk (resumed
  from the server's offset, not restarted), in every repeat.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import (
    Figure,
    Postgres,
    median,
    report,
    report_peak_rss,
    runs_in_fresh_processes,
)
from bench.output_copy import TARGET_RSS_MB, _peak_rss
from local.emulator_media import mp4_server
from local.secrets import api_key
from local.serve import serve
from local.supabase.faults import FaultState
from local.supabase.storage import standalone_storage_app
from local.supabase.storage_state import Bucket, StorageState
from shared.flows.outputs import copy_output
from shared.storage.supabase import SupabaseStorage
from shared.storage.tus import CHUNK_BYTES

MB = 1024 * 1024
SIZE = 50 * MB
CHUNK = CHUNK_BYTES
CLEAN_PATCHES = math.ceil(SIZE / CHUNK)
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


def group(_pg: Postgres | None = None) -> list[Figure]:
    """The figures: `run` once per repeat, each in a fresh process."""
    runs: list[dict[str, dict[str, float]]] = runs_in_fresh_processes("bench.tus_upload")
    peaks = [max(r["clean"]["peak_rss_growth_mb"], r["dropped_chunk"]["peak_rss_growth_mb"])
             for r in runs]  # fmt: skip
    rss = median(peaks)
    seconds = median([r["clean"]["seconds"] for r in runs])
    repeats = [{f"{k}_{n}": v for k, fig in r.items() for n, v in fig.items()} for r in runs]
    patches = [(int(r["clean"]["patches"]), int(r["dropped_chunk"]["patches"])) for r in runs]
    exact = all(p == (CLEAN_PATCHES, CLEAN_PATCHES + 1) for p in patches)
    clean, dropped = patches[len(patches) // 2]
    return [
        report_peak_rss(
            "tus_upload_peak_rss_growth",
            rss,
            target_mb=TARGET_RSS_MB,
            repeats=repeats,
            detail={
                "video_mb": SIZE // MB,
                "chunk_mb": CHUNK // MB,
                "clean_seconds": seconds,
                "throughput_mb_s": round(SIZE / MB / seconds, 1),
                "note": f"50 MB video, clean copy {SIZE / MB / seconds:.0f} MB/s",
            },
        ),
        report(
            Figure(
                name="tus_upload_patches",
                value=float(dropped - clean),
                unit="PATCH resent",
                target=f"{CLEAN_PATCHES} PATCHes clean, {CLEAN_PATCHES + 1} with a dropped chunk",
                passed=exact,
                repeats=[{"clean": c, "dropped_chunk": d} for c, d in patches],
                detail={
                    "note": f"{clean} clean, {dropped} with a dropped chunk"
                    + ("" if exact else "; not in every repeat"),
                },
            )
        ),
    ]


if __name__ == "__main__":
    group()
