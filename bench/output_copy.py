"""Copying a 200 MB provider output into storage: peak memory and throughput.

    python -m bench.output_copy

Serves a padded 200 MB MP4 on loopback (the emulator's media), copies it with `copy_output`
into a LocalStorage in a temporary folder, and prints the process's peak RSS growth (target:
under 64 MB), the throughput, and, from a second run under tracemalloc, Python's peak
allocation. The server runs in this process, so its memory counts too.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from local.emulator_media import mp4_server
from local.serve import serve
from shared.flows.outputs import copy_output
from shared.storage.local import LocalStorage

MB = 1024 * 1024
SIZE = 200 * MB
TARGET_RSS_MB = 64
_STATUS = Path("/proc/self/status")


def _status_kb(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{field} not in {_STATUS}")
    return int(match.group(1))


@contextmanager
def _peak_rss() -> Iterator[dict[str, float]]:
    """Peak RSS growth (MB) over the block: the kernel's high-water mark, reset at the start
    where the kernel allows it, cross-checked by sampling every millisecond."""
    result: dict[str, float] = {}
    baseline = _status_kb("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        hwm_reset = True
    except OSError:
        hwm_reset = False
    sampled = baseline
    stop = threading.Event()

    def sample() -> None:
        nonlocal sampled
        while not stop.wait(0.001):
            sampled = max(sampled, _status_kb("VmRSS"))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield result
    finally:
        stop.set()
        sampler.join()
        peak = max(sampled, _status_kb("VmHWM") if hwm_reset else 0)
        result["peak_rss_growth_mb"] = (peak - baseline) / 1024


async def _copy(url: str, root: Path) -> int:
    storage = LocalStorage(root, "http://localhost", "bench")
    async with httpx.AsyncClient() as client:
        return await copy_output(
            url, storage, "bench/videos/output.mp4", client=client, max_bytes=SIZE, timeout_s=600
        )


def run() -> dict[str, float]:
    """Run the benchmark; return its figures (MB, MB/s)."""
    with serve(mp4_server()) as base_url, tempfile.TemporaryDirectory() as tmp:
        url = f"{base_url}/output.mp4?size={SIZE}"
        # Warm up the code paths with a small copy, so the measured run pays no first-use costs
        # but the heap has not already grown to whatever a 200 MB copy needs.
        asyncio.run(_copy(f"{base_url}/output.mp4?size={MB}", Path(tmp) / "warmup"))
        with _peak_rss() as rss:
            started = time.perf_counter()
            copied = asyncio.run(_copy(url, Path(tmp) / "measured"))
            elapsed = time.perf_counter() - started
        assert copied == SIZE, copied
        tracemalloc.start()
        try:
            asyncio.run(_copy(url, Path(tmp) / "traced"))
            _, traced_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return {
        "output_copy_peak_rss_growth_mb": round(rss["peak_rss_growth_mb"], 1),
        "output_copy_throughput_mb_s": round(SIZE / MB / elapsed, 1),
        "output_copy_tracemalloc_peak_mb": round(traced_peak / MB, 1),
    }


if __name__ == "__main__":
    figures = run()
    print(
        f"output_copy_peak_rss_growth: {figures['output_copy_peak_rss_growth_mb']} MB "
        f"(target < {TARGET_RSS_MB} MB)"
    )
    print(f"output_copy_throughput: {figures['output_copy_throughput_mb_s']} MB/s")
    print(f"output_copy_tracemalloc_peak: {figures['output_copy_tracemalloc_peak_mb']} MB")
