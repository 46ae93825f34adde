"""The local stack behind `wanctl dev`: database, Replicate and Stripe emulators and API on one
machine.

`local_settings()` is the one place that wires the service to local parts; the end-to-end
tests use it too, so what they exercise is what `make dev` runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shlex
import sys
from pathlib import Path

from local.database import prepare, start_embedded
from local.secrets import LocalSecrets, load_local_secrets
from shared.core.config import Settings

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/api/webhooks/replicate"
DEMO_EMAIL = "demo@local.test"
DEMO_CREDITS = 500
STRIPE_WEBHOOK_PATH = "/api/webhooks/stripe"
# Where the Stripe API is when no Stripe emulator runs: nothing listens on port 9 (discard),
# so a stray call fails fast instead of reaching the real Stripe with a local key.
NO_STRIPE_URL = "http://127.0.0.1:9"


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _local_values(
    database_url: str, api_url: str, emulator_url: str, secrets: LocalSecrets, storage_dir: Path
) -> dict[str, str]:
    return {
        "environment": "development",
        "rpc_transport": "postgres",
        "database_url": database_url,
        "supabase_jwt_secret": secrets.jwt_secret,
        "replicate_api_token": secrets.replicate_api_token,
        "replicate_base_url": emulator_url,
        "replicate_webhook_secret": secrets.webhook_secret,
        "public_webhook_url": api_url + WEBHOOK_PATH,
        "storage_backend": "local",
        "storage_local_dir": str(storage_dir),
        "storage_public_base_url": api_url,
        "storage_signing_key": secrets.storage_signing_key,
        "stripe_secret_key": secrets.stripe_secret_key,
        "stripe_webhook_secret": secrets.stripe_webhook_secret,
        "stripe_base_url": NO_STRIPE_URL,  # the Stripe emulator's URL when one runs
        "checkout_success_url": api_url + "/checkout/done?session_id={CHECKOUT_SESSION_ID}",
        "checkout_cancel_url": api_url + "/checkout/canceled",
    }


def local_settings(
    *,
    database_url: str,
    api_url: str,
    emulator_url: str,
    secrets: LocalSecrets,
    storage_dir: Path = Path(".local") / "storage",
    **overrides: object,
) -> Settings:
    """Settings that point the real code at the local database and the emulators.

    Every other setting comes from the environment as in production (CREATE_RATE_PER_MINUTE,
    PROVIDER_DAILY_BUDGET_USD, RETENTION_DAYS, ...), so limits can be tried locally; the
    environment also overrides the stack's defaults (environment, CORS origins). What the stack
    wires itself (database, emulator, storage, secrets) and explicit `overrides` win.
    """
    wired = _local_values(database_url, api_url, emulator_url, secrets, storage_dir)
    defaults: dict[str, object] = {
        "environment": wired.pop("environment"),
        "cors_origins": ["http://localhost:3000", "http://127.0.0.1:3000"],
    }
    values: dict[str, object] = {
        **wired,
    }
    from_env = Settings().model_dump(exclude_unset=True)
    merged = {k: v for k, v in defaults.items() if k not in from_env}
    merged.update(from_env)
    merged.update(values)
    merged.update(overrides)
    return Settings.model_validate(merged)


def local_environment(
    *, database_url: str, api_url: str, emulator_url: str, secrets: LocalSecrets, storage_dir: Path
) -> dict[str, str]:
    """The same settings as environment variables: how a deployed function gets them (from
    its Modal secret), for processes started to measure or test a function alone."""
    values = _local_values(database_url, api_url, emulator_url, secrets, storage_dir)
    return {name.upper(): value for name, value in values.items()}


async def ensure_demo_user(database_url: str) -> str:
    """The demo user's id, created (with credits) on the first run."""
    from local.users import create_user, find_user
    from shared.core.errors import NotFound

    try:
        user_id, _ = await find_user(database_url, DEMO_EMAIL)
    except NotFound:
        user_id = await create_user(database_url, DEMO_EMAIL, credits=DEMO_CREDITS)
    return str(user_id)


def _dev_urls(local_dir: Path) -> tuple[str, str, str]:
    """The API, Replicate and Stripe emulator URLs of the last `wanctl dev` (.local/dev.env)."""
    values: dict[str, str] = {}
    env_file = local_dir / "dev.env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            key, _, value = line.partition("=")
            values[key] = shlex.split(value)[0] if value else ""
    return (
        values.get("API_URL", "http://127.0.0.1:8000"),
        values.get("REPLICATE_BASE_URL", "http://127.0.0.1:8001"),
        values.get("STRIPE_BASE_URL", "http://127.0.0.1:8002"),
    )


def local_doctor_settings(local_dir: Path) -> tuple[Settings, str]:
    """The settings `wanctl dev` runs with, and its database URL (for `wanctl doctor --local`)."""
    secrets = load_local_secrets(local_dir)
    url = start_embedded(local_dir / "pgdata").get_uri()
    api_url, emulator_url, stripe_url = _dev_urls(local_dir)
    settings = local_settings(
        database_url=url,
        api_url=api_url,
        emulator_url=emulator_url,
        secrets=secrets,
        stripe_base_url=stripe_url,
    )
    return settings, url


async def sweep_local(
    *, local_dir: Path, database_url: str | None = None
) -> dict[str, int | float]:
    """One reconciliation pass against the local stack (what `wanctl sweep` runs)."""
    from functions.sweeper import run_once

    secrets = load_local_secrets(local_dir)
    url = database_url or start_embedded(local_dir / "pgdata").get_uri()
    api_url, emulator_url, stripe_url = _dev_urls(local_dir)
    settings = local_settings(
        database_url=url,
        api_url=api_url,
        emulator_url=emulator_url,
        secrets=secrets,
        stripe_base_url=stripe_url,
    )
    return (await run_once(settings)).as_dict()


async def sweep_forever(settings: Settings, interval_s: float = 60.0) -> None:
    """The local stand-in for the Modal schedule: a pass every interval, errors logged."""
    from functions.sweeper import run_once
    from shared.core.errors import AppError

    while True:
        await asyncio.sleep(interval_s)
        try:
            await run_once(settings)
        except AppError as exc:
            log.warning("local sweep failed: %s", exc.detail)


async def run_dev(
    *,
    port: int,
    local_dir: Path,
    faults_json: str | None = None,
    emulator_duration_s: float = 6.0,
    stripe_faults_json: str | None = None,
) -> None:
    """Start everything, print how to use it, and serve until interrupted."""
    import uvicorn

    from local.devserver import create_app
    from local.emulator import create_emulator_app
    from local.emulator_faults import EmulatorConfig, Faults
    from local.stripe_emulator import create_stripe_emulator_app
    from local.stripe_engine import StripeEmulatorConfig, StripeFaults
    from local.tokens import mint_token

    secrets = load_local_secrets(local_dir)
    from shared.db.migrate import configure_database

    database_url = start_embedded(local_dir / "pgdata").get_uri()
    applied = await prepare(database_url)
    api_url = f"http://127.0.0.1:{port}"
    emulator_url = f"http://127.0.0.1:{port + 1}"
    stripe_url = f"http://127.0.0.1:{port + 2}"
    settings = local_settings(
        database_url=database_url,
        api_url=api_url,
        emulator_url=emulator_url,
        secrets=secrets,
        stripe_base_url=stripe_url,
        # No frontend locally: the buyer lands on the emulator's own pages.
        checkout_success_url=stripe_url + "/c/done?session_id={CHECKOUT_SESSION_ID}",
        checkout_cancel_url=stripe_url + "/c/canceled",
    )
    await configure_database(database_url, signup_bonus_credits=settings.signup_bonus_credits)
    demo_id = await ensure_demo_user(database_url)
    token = mint_token(secrets.jwt_secret, demo_id, email=DEMO_EMAIL, ttl_s=secrets.token_ttl_s)
    emulator = create_emulator_app(
        EmulatorConfig(
            api_token=secrets.replicate_api_token,
            webhook_secret=secrets.webhook_secret,
            faults=Faults.model_validate(
                {"duration_s": emulator_duration_s, **json.loads(faults_json or "{}")}
            ),
        )
    )
    stripe_emulator = create_stripe_emulator_app(
        StripeEmulatorConfig(
            api_key=secrets.stripe_secret_key,
            webhook_secret=secrets.stripe_webhook_secret,
            webhook_url=api_url + STRIPE_WEBHOOK_PATH,
            faults=StripeFaults.model_validate(json.loads(stripe_faults_json or "{}")),
        )
    )
    api = create_app(settings=settings)
    servers = [
        uvicorn.Server(
            uvicorn.Config(emulator, host="127.0.0.1", port=port + 1, log_level="warning")
        ),
        uvicorn.Server(
            uvicorn.Config(stripe_emulator, host="127.0.0.1", port=port + 2, log_level="warning")
        ),
        uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=port, log_level="info")),
    ]

    env = {
        "API_URL": api_url,
        "DATABASE_URL": database_url,
        "DEMO_USER_ID": demo_id,
        "DEMO_TOKEN": token,
        "REPLICATE_BASE_URL": emulator_url,
        "WEBHOOK_SECRET": secrets.webhook_secret,
        "STRIPE_BASE_URL": stripe_url,
        "STRIPE_SECRET_KEY": secrets.stripe_secret_key,
        "STRIPE_WEBHOOK_SECRET": secrets.stripe_webhook_secret,
    }
    env_file = local_dir / "dev.env"
    env_file.write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items()))
    env_file.chmod(0o600)

    tasks = [asyncio.create_task(s.serve()) for s in servers]
    sweeper = asyncio.create_task(sweep_forever(settings))
    while not all(s.started for s in servers):
        if any(t.done() for t in tasks):
            break
        await asyncio.sleep(0.05)
    if not all(s.started for s in servers):
        for s in servers:
            s.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
        raise SystemExit(f"could not start the local stack (ports {port}-{port + 2} free?)")

    _out(f"migrations applied: {', '.join(applied) or 'none pending'}")
    for key, value in env.items():
        _out(f"{key}={value}")
    _out(f"wrote {env_file}")
    _out()
    _out("Try it (in another shell):")
    _out(f"  set -a; . {env_file}; set +a")
    _out(
        "  curl -s -X POST $API_URL/api/generation/text-to-video "
        '-H "Authorization: Bearer $DEMO_TOKEN" -H "Content-Type: application/json" '
        '-d \'{"prompt": "a red fox running through fresh snow", '
        '"model": "t2v-14B", "resolution": "480p"}\''
    )
    _out('  curl -s $API_URL/api/generation/status/<id> -H "Authorization: Bearer $DEMO_TOKEN"')
    _out('Buy credits: POST $API_URL/api/credits/checkout {"pack": "small"}, open checkout_url')
    _out("  in a browser and press Pay; GET $API_URL/api/credits shows the new balance.")
    _out(f"API docs: {api_url}/docs   (Ctrl-C stops everything)")
    try:
        await asyncio.gather(*tasks)
    finally:
        sweeper.cancel()
        for s in servers:
            s.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)
