"""The OpenAPI document tells the truth: schemathesis runs every check it has (`--checks all`)
against the combined dev app, served on loopback with the real database and the Replicate
emulator, as a signed-in user with plenty of credits.

Every operation, positive and negative data, a bounded number of examples each: responses must
be documented (status, content type, headers, body schema), valid data accepted, invalid data
refused with a documented 4xx, auth enforced. Frontends generate their clients from this
document. (The CLI, not the pytest plugin: the plugin does not run on pytest 9.)
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import uuid
from pathlib import Path

import pytest

from local.secrets import LocalSecrets
from local.tokens import mint_token
from tests.support import AdminConn, create_user

log = logging.getLogger(__name__)
# Bounded to keep the suite fast; a longer, seeded run: WAN_FUZZ_EXAMPLES=200 WAN_FUZZ_SEED=7.
EXAMPLES_PER_OPERATION = int(os.environ.get("WAN_FUZZ_EXAMPLES", "10"))
SEED = os.environ.get("WAN_FUZZ_SEED")
CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"replicate_timeout_s": 2.0, "max_active_generations": 1000}


async def test_openapi_document_passes_every_schemathesis_check(
    api_url: str, admin: AdminConn, secrets: LocalSecrets, tmp_path: Path
) -> None:
    user: uuid.UUID = await create_user(admin, credits=10_000_000)
    token = mint_token(secrets.jwt_secret, user)
    cli = Path(sys.executable).with_name("schemathesis")
    process = await asyncio.create_subprocess_exec(
        str(cli),
        f"--config-file={CONFIG}",
        "run",
        f"{api_url}/openapi.json",
        "--checks=all",
        f"--max-examples={EXAMPLES_PER_OPERATION}",
        f"--seed={SEED}" if SEED else "--generation-deterministic",
        "--continue-on-failure",
        "--header",
        f"Authorization: Bearer {token}",
        "--no-color",
        f"--report-dir={tmp_path}",
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    log.info("schemathesis:\n%s", text)
    assert process.returncode == 0, text
