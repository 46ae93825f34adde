"""Modal wiring, and nothing else: the image, the secret, one web function per endpoint.

The only module that imports `modal`. Each function is a shim that builds the endpoint's
FastAPI app; settings are read and clients opened when a container starts, never at import,
so `modal deploy modal_app.py` needs no network access to the services and no secrets locally.

    modal secret create wan-backend SUPABASE_URL=... SUPABASE_SERVICE_ROLE_KEY=... \\
        SUPABASE_JWKS_URL=... REPLICATE_API_TOKEN=... REPLICATE_WEBHOOK_SECRET=whsec_... \\
        STRIPE_SECRET_KEY=sk_live_... STRIPE_WEBHOOK_SECRET=whsec_... \\
        CHECKOUT_SUCCESS_URL=https://<app>/credits?checkout=success \\
        CHECKOUT_CANCEL_URL=https://<app>/credits?checkout=cancel
    modal deploy modal_app.py

PUBLIC_WEBHOOK_URL may be left out: each container then asks Modal for the deployed webhook
function's URL when it starts (see `webhook_url_at_start`).

Stripe's webhook endpoint is https://<workspace>--wan-stripe-webhook.modal.run/api/webhooks/stripe
(events: checkout.session.completed, checkout.session.async_payment_succeeded,
checkout.session.async_payment_failed, checkout.session.expired, charge.refunded,
charge.dispute.created, charge.dispute.closed); its signing secret is STRIPE_WEBHOOK_SECRET.
Optional: CREDIT_PACKS (JSON), PURCHASE_RECONCILE_AFTER_S, STRIPE_RATE_PER_S.
"""

from __future__ import annotations

import os
from collections.abc import Callable, MutableMapping
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

import modal

if TYPE_CHECKING:
    from fastapi import FastAPI

    from shared.core.domain import Generation

APP_NAME = "wan-backend"
MINUTES = 60

# Versions come from uv.lock, the lock the tests ran against (`make lock` after editing
# pyproject.toml). The embedded PostgreSQL is for the local stack and tests only: not deployed.
UV_VERSION = "0.13.9"  # the Makefile's UV_VERSION
# Debian's hashed CA directory: TLS reads a CA only when a handshake needs it (shared.core.http's
# SYSTEM_CA_DIR; importing that here would import our package into `modal deploy`).
SSL_CERT_DIR = "/etc/ssl/certs"
image = (
    modal.Image.debian_slim(python_version="3.11")
    .apt_install("ca-certificates")
    .uv_sync(
        str(Path(__file__).resolve().parent),
        uv_version=UV_VERSION,
        extra_options="--no-install-package pgserver",
    )
    # SSL_CERT_DIR: CA certificates read when a handshake needs one (see shared/core/http.py).
    .env({"ENVIRONMENT": "production", "RPC_TRANSPORT": "supabase", "SSL_CERT_DIR": SSL_CERT_DIR})
    .add_local_python_source("functions", "shared")
)

# A missing key fails the deploy, not the first request.
secret = modal.Secret.from_name(
    "wan-backend",
    required_keys=[
        "SUPABASE_URL",
        "SUPABASE_SERVICE_ROLE_KEY",
        "REPLICATE_API_TOKEN",
        "REPLICATE_WEBHOOK_SECRET",
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "CHECKOUT_SUCCESS_URL",
        "CHECKOUT_CANCEL_URL",
    ],
)

app = modal.App(APP_NAME, image=image, secrets=[secret])

WEBHOOK_FUNCTION = "webhook"
WEBHOOK_PATH = "/api/webhooks/replicate"
WebUrlLookup = Callable[[], str | None]


def _deployed_webhook_url() -> str | None:
    """The web URL Modal gave the deployed webhook function (None if it has none)."""
    return modal.Function.from_name(APP_NAME, WEBHOOK_FUNCTION).get_web_url()


def webhook_url_at_start(
    environ: MutableMapping[str, str] | None = None,
    lookup: WebUrlLookup = _deployed_webhook_url,
) -> None:
    """Set PUBLIC_WEBHOOK_URL from Modal when the secret does not set it, before the settings
    are read: the URL Replicate calls is the one Modal really serves, never a guessed one.

    An explicit PUBLIC_WEBHOOK_URL (a custom domain, a proxy) wins. When the lookup finds no URL
    the setting stays unset and the app's start fails naming it. Blocking (one Modal API call,
    once per container): async functions run it in a thread.
    """
    env = os.environ if environ is None else environ
    if env.get("PUBLIC_WEBHOOK_URL", "").strip():
        return
    base = lookup()
    if base:
        env["PUBLIC_WEBHOOK_URL"] = base.rstrip("/") + WEBHOOK_PATH


# Handlers are async and spend their time waiting on Postgres and Replicate, so one container
# serves many requests at once.
TIMEOUT = 1 * MINUTES
SCALEDOWN = 5 * MINUTES
MAX_INPUTS = 100
TARGET_INPUTS = 50
SWEEP_TIMEOUT = 5 * MINUTES
COPY_TIMEOUT = 15 * MINUTES
UPLOAD_MAX_INPUTS = 20


def _web_function(
    name: str,
    label: str,
    *,
    max_inputs: int = MAX_INPUTS,
    target_inputs: int | None = TARGET_INPUTS,
    min_containers: int | None = None,
    app_options: Callable[[], dict[str, object]] = dict,
) -> modal.Function[[], FastAPI, FastAPI]:
    """The web function that serves `functions.<name>`'s FastAPI app at `label`.

    The result must be bound to the module-level name `name`: a container finds its function by
    importing this module and reading the attribute named by the function's `__qualname__`
    (checked by tests/test_modal_app.py). The app's module is imported in the container only.
    """

    def serve() -> FastAPI:
        webhook_url_at_start()
        create_app: Callable[..., FastAPI] = import_module(f"functions.{name}").create_app
        return create_app(**app_options())

    serve.__name__ = serve.__qualname__ = name
    function = app.function(
        timeout=TIMEOUT, scaledown_window=SCALEDOWN, min_containers=min_containers
    )
    concurrent = modal.concurrent(max_inputs=max_inputs, target_inputs=target_inputs)
    return function(concurrent(modal.asgi_app(label=label)(serve)))


text_to_video = _web_function("text_to_video", "wan-text-to-video")
# Uploads decode images (CPU) and hold up to 10 MB each: fewer at once per container.
image_to_video = _web_function(
    "image_to_video", "wan-image-to-video", max_inputs=UPLOAD_MAX_INPUTS, target_inputs=None
)
status = _web_function("status", "wan-status")
# Cancel, retry, history, credits and buying them (packs, checkout, purchases): light, rarely
# called routes share one pool.
controls = _web_function("controls", "wan-controls")
# Deleting a generation or the account: rare, and may wait on storage and Auth.
account = _web_function("account", "wan-account")
# The operator's numbers (app_metadata.role = admin).
admin = _web_function("admin", "wan-admin")


async def _spawn_copy(gen: Generation) -> None:
    """On Modal the video copy runs as its own function, not inside the webhook's request."""
    await keep_video.spawn.aio(str(gen.user_id), str(gen.id))


# Replicate's webhooks must be answered quickly; keep one container warm so a cold start never
# pushes a delivery past Replicate's timeout. The copy of a finished video is spawned, not run
# in the webhook's request.
webhook = _web_function(
    "webhook", "wan-webhook", min_containers=1, app_options=lambda: {"schedule_copy": _spawn_copy}
)
# Stripe's events (payments, refunds, disputes) have their own function: a slow or failing
# generation webhook never delays a payment, and each scales on its own.
stripe_webhook = _web_function("stripe_webhook", "wan-stripe-webhook")


# Not retried by Modal: a failed copy is recorded (not raised) and its claim released after
# COPY_RETRY_AFTER_S, and the sweep retries it; a container that dies mid-copy leaves a claim
# that expires, then the sweep retries it too.
@app.function(timeout=COPY_TIMEOUT)
async def keep_video(user_id: str, generation_id: str) -> bool:
    """Copy one completed generation's video into storage (the sweep retries failures)."""
    import asyncio
    import uuid

    from functions.keeper_job import keep_one

    await asyncio.to_thread(webhook_url_at_start)
    return await keep_one(uuid.UUID(user_id), uuid.UUID(generation_id))


# A Cron schedule, not a Period: a Period restarts its countdown on every deploy. Passes may
# overlap (claims use SKIP LOCKED), so a slow pass never blocks the next one.
@app.function(schedule=modal.Cron("* * * * *"), timeout=SWEEP_TIMEOUT)
async def sweep() -> dict[str, int | float]:
    import asyncio

    from functions.sweeper import run_once

    await asyncio.to_thread(webhook_url_at_start)
    summary = await run_once()
    return summary.as_dict()
