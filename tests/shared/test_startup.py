"""shared.core.startup: httpx imports without its command-line client, and still works."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from shared.core.startup import skip_httpx_cli

skip_httpx_cli()
import httpx

assert httpx.AsyncClient and httpx.Timeout(1.0)
print(sorted(m for m in sys.modules if m.split(".")[0] in ("rich", "pygments", "click")))
"""


def test_httpx_imports_without_its_cli_libraries() -> None:
    out = subprocess.run(  # noqa: S603 - our own interpreter, a fixed script
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
