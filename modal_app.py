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
image = (
    modal.Image.debian_slim(python_version="3.11")
    .uv_sync(
        str(Path(__file__).resolve().parent),
        uv_version=UV_VERSION,
        extra_options="--no-install-package pgserver",
    )
    .env({"ENVIRONMENT": "production", "RPC_TRANSPORT": "supabase"})
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


@app.function(timeout=TIMEOUT, scaledown_window=SCALEDOWN)
@modal.concurrent(max_inputs=MAX_INPUTS, target_inputs=TARGET_INPUTS)
@modal.asgi_app(label="wan-text-to-video")
def text_to_video() -> FastAPI:
    webhook_url_at_start()
    from functions.text_to_video import create_app

    return create_app()


@app.function(timeout=TIMEOUT, scaledown_window=SCALEDOWN)
@modal.concurrent(max_inputs=UPLOAD_MAX_INPUTS)
@modal.asgi_app(label="wan-image-to-video")
def image_to_video() -> FastAPI:
    """Uploads decode images (CPU) and hold up to 10 MB each: fewer at once per container."""
    webhook_url_at_start()
    from functions.image_to_video import create_app

    return create_app()


@app.function(timeout=TIMEOUT, scaledown_window=SCALEDOWN)
@modal.concurrent(max_inputs=MAX_INPUTS, target_inputs=TARGET_INPUTS)
@modal.asgi_app(label="wan-status")
def status() -> FastAPI:
    webhook_url_at_start()
    from functions.status import create_app

    return create_app()


@app.function(timeout=TIMEOUT, scaledown_window=SCALEDOWN)
@modal.concurrent(max_inputs=MAX_INPUTS, target_inputs=TARGET_INPUTS)
@modal.asgi_app(label="wan-controls")
def controls() -> FastAPI:
    """Cancel, retry, history, credits and buying them (packs, checkout, purchases): light,
    rarely called routes share one pool."""
    webhook_url_at_start()
    from functions.controls import create_app

    return create_app()


@app.function(timeout=TIMEOUT, scaledown_window=SCALEDOWN)
@modal.concurrent(max_inputs=MAX_INPUTS, target_inputs=TARGET_INPUTS)
@modal.asgi_app(label="wan-account")
def account() -> FastAPI:
    """Deleting a generation or the account: rare, and may wait on storage and Auth."""
    webhook_url_at_start()
    from functions.account import create_app

    return create_app()


@app.function(timeout=TIMEOUT, scaledown_window=SCALEDOWN)
@modal.concurrent(max_inputs=MAX_INPUTS, target_inputs=TARGET_INPUTS)
@modal.asgi_app(label="wan-admin")
def admin() -> FastAPI:
    """The operator's numbers (app_metadata.role = admin)."""
    webhook_url_at_start()
    from functions.admin import create_app

    return create_app()


# Replicate's webhooks must be answered quickly; keep one container warm so a cold start never
# pushes a delivery past Replicate's timeout.
@app.function(timeout=TIMEOUT, scaledown_window=SCALEDOWN, min_containers=1)
@modal.concurrent(max_inputs=MAX_INPUTS, target_inputs=TARGET_INPUTS)
@modal.asgi_app(label="wan-webhook")
def webhook() -> FastAPI:
    webhook_url_at_start()
    from functions.webhook import create_app

    return create_app(schedule_copy=_spawn_copy)


# Stripe's events (payments, refunds, disputes) have their own function: a slow or failing
# generation webhook never delays a payment, and each scales on its own.
@app.function(timeout=TIMEOUT, scaledown_window=SCALEDOWN)
@modal.concurrent(max_inputs=MAX_INPUTS, target_inputs=TARGET_INPUTS)
@modal.asgi_app(label="wan-stripe-webhook")
def stripe_webhook() -> FastAPI:
    webhook_url_at_start()
    from functions.stripe_webhook import create_app

    return create_app()


async def _spawn_copy(gen: Generation) -> None:
    """On Modal the video copy runs as its own function, not inside the webhook's request."""
    await keep_video.spawn.aio(str(gen.user_id), str(gen.id))


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
