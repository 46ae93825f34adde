"""Start-up cost we refuse to pay: a container's cold start is the user's first wait.

Imports that our code never uses but a library performs anyway whenever a package happens to be
installed. Each is left out by a documented import-system mechanism, only if nothing imported
it yet, and falls back to the library's own path when something does use it:

- httpx's `__init__` imports its command-line client (`httpx._main`: click, rich, pygments;
  ~40 ms of CPU) when those are installed, and modal depends on them. A `None` entry in
  `sys.modules` makes that import fail, and httpx falls back to a stub; we never run the CLI.
- httpcore imports its HTTP/2 connection (h2, hpack, hyperframe; ~11 ms) whenever h2 is
  installed (supabase's packages depend on it). Every httpx client of ours speaks HTTP/1.1
  (`shared.core.http`), so the same `None` entry makes httpcore use its own stand-in, which
  refuses HTTP/2 if ever asked. h2 itself stays importable (modal's gRPC client uses it).
- PyJWT imports `cryptography.x509` (~28 ms) to recognise certificates passed as keys. We verify
  with JWK keys (JWKS mode) or a secret, so the module is made lazy (`importlib.util.LazyLoader`):
  it loads on its first attribute access. HS256 verification touches it to refuse a
  certificate used as a secret, so in that mode it loads with the first token instead, on the
  event loop (tokens are verified there, never in worker threads: LazyLoader's first access is
  not thread-safe before Python 3.12).

And the cyclic garbage collector: a full collection walks every object alive (~20 ms per pass
once FastAPI, pydantic and our modules are loaded), and start-up's imports trigger such passes.
Those objects live as long as the process, so `lighten_start` freezes what exists before our
modules load (`gc.freeze`: later passes skip them), and `collector_paused` opens a function's
services without the collector, then freezes what start-up built; collections during requests
then only walk what requests create.
"""

from __future__ import annotations

import gc
import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager

# Imports left out: each falls back to a stand-in of its own library's (see above).
SKIPPED = ("httpx._main", "httpcore._sync.http2", "httpcore._async.http2")
# Imports deferred to their first use.
DEFERRED = ("cryptography.x509",)

_frozen = False


def lighten_start() -> None:
    """Leave out and defer the imports above, and freeze the objects alive so far; call before
    httpx, httpcore and PyJWT are first imported. Anything already imported is left as it is."""
    for name in SKIPPED:
        if name not in sys.modules and name.rpartition(".")[0] not in sys.modules:
            # A None entry makes the import raise ImportError (documented import-system
            # behaviour); typeshed allows only modules as values.
            sys.modules[name] = None  # type: ignore[assignment]
    for name in DEFERRED:
        if name not in sys.modules:
            _defer(name)
    gc.freeze()


def _defer(name: str) -> None:
    """Register `name` as a module that executes on its first attribute access."""
    try:
        spec = importlib.util.find_spec(name)
    except ImportError:  # its package is not installed: nothing to defer
        return
    if spec is None or spec.loader is None:
        return
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    setattr(sys.modules[parent], child, module)  # as the import system binds a submodule


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run the block (a process's start) without the cyclic collector; afterwards, the first
    time in a process, freeze every object then alive (start-up's, which live as long as the
    process), then restore the collector as it was."""
    global _frozen
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if not _frozen:
            _frozen = True
            gc.freeze()
        if enabled:
            gc.enable()
