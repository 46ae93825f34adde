"""The composition root: each endpoint group's builder opens, and imports, only what it uses.

Each case starts a fresh interpreter (imports are per process), builds one group from
environment settings against a real test database, and reports what it registered and which
watched modules got imported.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from local.secrets import load_local_secrets
from local.stack import local_environment, local_settings
from shared import wiring
from shared.core.domain import Generation
from shared.core.errors import NotFound
from shared.provider.replicate import Prediction
from shared.web.registry import provided
from shared.wiring import (
    PaymentServices,
    StatusServices,
    StripeWebhookServices,
    WebhookServices,
)

ROOT = Path(__file__).resolve().parent.parent.parent
WATCHED = (
    "PIL", "jwt", "replicate", "supabase", "httpx", "stripe", "shared", "psycopg", "postgrest",
    "storage3", "supabase_auth", "realtime", "rich",
)  # fmt: skip

CHILD = """
import asyncio, json, sys

from shared import wiring
from shared.core.config import get_settings


async def spawn(gen):  # stands in for Modal's spawn of the copy function
    return None


async def main(target):
    if target.startswith("webhook"):
        opener = wiring.webhook(spawn if target == "webhook" else None)
    else:
        opener = getattr(wiring, target)
    async with opener(get_settings()) as registry:
        registered = sorted(type(v).__name__ for v in registry.values())
    watched = tuple(sys.argv[2].split(","))
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in watched)
    sys.stdout.write(json.dumps({"registered": registered, "modules": loaded}))


asyncio.run(main(sys.argv[1]))
"""


NOWHERE = "http://127.0.0.1:9"  # never called while building (a JWKS fetch only logs)


def build(
    target: str, database_url: str, tmp_path: Path, production: bool = False
) -> dict[str, list[str]]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update(
        local_environment(
            database_url=database_url,
            api_url=NOWHERE,
            emulator_url=NOWHERE,
            secrets=load_local_secrets(tmp_path),
            storage_dir=tmp_path / "storage",
            supabase_url=NOWHERE if production else None,
        )
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter, a fixed script
        [sys.executable, "-c", CHILD, target, ",".join(WATCHED)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    result: dict[str, list[str]] = json.loads(out.stdout)
    return result


# target -> (what it registers, modules it must not import, modules it must import). No group
# imports httpx's command-line client (rich), which modal's dependencies install.
CASES = {
    # No video copier, no image library; the bounded poll of an overdue generation opens the
    # provider when it first happens, not at start, and the read batcher is built by the
    # first read.
    "status": (
        ["Authenticator", "StatusServices"],
        {"PIL", "supabase", "stripe", "replicate", "rich", "shared.flows.keeper",
         "shared.db.batching"},
        {"jwt", "shared.flows.links"},
    ),
    # On Modal the copy is spawned: no copier here, and a webhook has neither users nor
    # provider calls.
    "webhook": (
        ["WebhookServices"],
        {"jwt", "replicate", "PIL", "supabase", "httpx", "stripe", "shared.flows.keeper"},
        {"shared.db.batching"},
    ),
    # Locally the copy runs in this process, but its client opens with the first copy (in the
    # background), not at start.
    "webhook_local": (
        ["WebhookServices"],
        {"jwt", "replicate", "PIL", "supabase", "httpx", "shared.flows.keeper"},
        {"shared.flows.scheduling"},
    ),
    # Every submit calls the provider: it opens at start. Storage does not (only a retried
    # image-to-video needs a link to its stored input).
    "text_to_video": (
        ["Authenticator", "SubmitServices"],
        {"PIL", "supabase", "stripe", "rich", "shared.storage.local", "shared.flows.keeper",
         "shared.db.batching"},
        {"replicate", "jwt"},
    ),
    # Packs, checkout and purchases ride with the controls; Stripe's client opens with the
    # first checkout, the provider with the first cancel or retry.
    "controls": (
        ["Authenticator", "ControlServices", "PaymentServices"],
        {"PIL", "supabase", "stripe", "replicate", "rich", "shared.flows.keeper",
         "shared.db.batching"},
        {"jwt", "shared.flows.purchases"},
    ),
    # Stripe's webhook: no users, no provider, no storage client, no copier; a signed event
    # is applied without calling Stripe.
    "stripe_webhook": (
        ["StripeWebhookServices"],
        {"jwt", "replicate", "PIL", "supabase", "stripe", "shared.flows.keeper",
         "shared.db.batching"},
        {"shared.flows.purchases"},
    ),
}  # fmt: skip


@pytest.mark.parametrize("target", sorted(CASES))
async def test_each_group_opens_and_imports_only_what_it_uses(
    target: str, database_url: str, tmp_path: Path
) -> None:
    registered, absent, present = CASES[target]
    result = build(target, database_url, tmp_path)
    assert result["registered"] == registered
    modules = set(result["modules"])
    assert absent & modules == set()
    assert present <= modules


# In production's shape the same groups use supabase-py's PostgREST and Storage clients, and
# neither psycopg nor the umbrella client (which would also import the auth, realtime and
# functions clients) nor httpx's command-line client.
PRODUCTION_ABSENT = {"psycopg", "supabase", "realtime", "rich", "stripe"}


@pytest.mark.parametrize(
    ("target", "present"),
    [
        ("status", {"postgrest", "storage3", "jwt"}),
        ("text_to_video", {"postgrest", "replicate", "jwt"}),
        ("controls", {"postgrest", "storage3", "jwt"}),
        ("webhook", {"postgrest"}),
    ],
)
async def test_in_production_shape_each_group_imports_only_the_clients_it_uses(
    target: str, present: set[str], database_url: str, tmp_path: Path
) -> None:
    modules = set(build(target, database_url, tmp_path, production=True)["modules"])
    assert PRODUCTION_ABSENT & modules == set()
    assert present <= modules


@pytest.mark.parametrize(
    "services", [StatusServices, WebhookServices, PaymentServices, StripeWebhookServices]
)
def test_built_services_cannot_be_reassigned(services: type[object]) -> None:
    params = getattr(services, "__dataclass_params__", None)
    assert params is not None
    assert params.frozen


async def test_shutdown_lets_a_pending_update_finish_before_the_database_closes(
    database_url: str, tmp_path: Path
) -> None:
    settings = local_settings(
        database_url=database_url,
        api_url="http://127.0.0.1:9",
        emulator_url="http://127.0.0.1:9",
        secrets=load_local_secrets(tmp_path),
        storage_dir=tmp_path / "storage",
    )
    unknown = Prediction(id="p-1", status="processing")

    async def spawn(gen: Generation) -> None:
        return None

    async with wiring.webhook(spawn)(settings) as registry:
        services = provided(registry, WebhookServices)
        pending = asyncio.create_task(
            services.updates.apply(uuid.uuid4(), unknown, source="webhook")
        )
        await asyncio.sleep(0)  # let it reach the batcher; the exit below must wait for it
    # The database answered (an unknown generation), not a closed pool.
    with pytest.raises(NotFound):
        await pending
