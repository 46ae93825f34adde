"""The local stack behind `wanctl dev`: database, emulator and API on one machine."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from local.database import prepare, start_embedded

log = logging.getLogger(__name__)


def _out(line: str) -> None:
    import sys

    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def run_dev(*, port: int, local_dir: Path) -> None:
    """Start everything, print how to use it, and run until interrupted."""
    server = start_embedded(local_dir / "pgdata")
    url = server.get_uri()
    applied = await prepare(url)
    _out(f"migrations applied: {', '.join(applied) or 'none pending'}")
    _out(f"DATABASE_URL={url}")
    env_file = local_dir / "dev.env"
    env_file.write_text(f"DATABASE_URL={url}\n")
    _out(f"wrote {env_file}")
    _out("the API arrives with the next issue; press Ctrl-C to stop the database")
    await asyncio.Event().wait()
