"""Start-up cost we refuse to pay.

httpx's `__init__` imports its command-line client (`httpx._main`: click, rich, pygments; about
85 ms of CPU, a fifth of a bare FastAPI start) whenever those packages happen to be installed,
and modal depends on them. It falls back to a stub when that import fails, and we never run the
httpx CLI, so before the first `import httpx` we make that one import fail.
"""

from __future__ import annotations

import sys


def skip_httpx_cli() -> None:
    """Call before httpx is first imported; a no-op once it is (nothing changes under it)."""
    if "httpx" not in sys.modules:
        # A None entry makes `import httpx._main` raise ImportError: httpx's own fallback.
        # (Documented import-system behaviour; typeshed allows only modules as values.)
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
