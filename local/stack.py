"""The local stack behind `wanctl dev`: database, the Replicate, Supabase and Stripe emulators
and the API on one machine.

`local_settings()` is the one place that wires the service to local parts; the end-to-end
tests use it too, so what they exercise is what `make dev` runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shlex
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from local.configs import (
    DevMode,
    mint_local_token,
    storage_buckets,
    supabase_emulator_config,
    supabase_overrides,
)
from local.database import prepare, start_embedded
from local.secrets import LocalSecrets, load_local_secrets
from local.supabase.context import JWKS_PATH
from shared.core.config import Settings

if TYPE_CHECKING:
    import uvicorn
    from starlette.types import ASGIApp

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/api/webhooks/replicate"
STRIPE_WEBHOOK_PATH = "/api/webhooks/stripe"
# Where the Stripe API is when no Stripe emulator runs: nothing listens on port 9 (discard),
# so a stray call fails fast instead of reaching the real Stripe with a local key.
NO_STRIPE_URL = "http://127.0.0.1:9"
DEMO_EMAIL = "demo@local.test"
DEMO_CREDITS = 500


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
    """Settings that point the real code at the local database and the emulator (the direct
    configuration; add `supabase_overrides(...)` for production's).

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
    *,
    database_url: str,
    api_url: str,
    emulator_url: str,
    secrets: LocalSecrets,
    storage_dir: Path,
    supabase_url: str | None = None,
) -> dict[str, str]:
    """The same settings as environment variables: how a deployed function gets them (from
    its Modal secret), for processes started to measure or test a function alone. With
    `supabase_url`, production's configuration against the Supabase emulator there
    (`supabase_overrides`); a setting they unset is left out."""
    values: dict[str, object] = dict(
        _local_values(database_url, api_url, emulator_url, secrets, storage_dir)
    )
    if supabase_url is not None:
        values.update(supabase_overrides(secrets, supabase_url))
    return {
        name.upper(): value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        for name, value in values.items()
        if value is not None
    }


async def ensure_demo_user(database_url: str) -> str:
    """The demo user's id, created (with credits) on the first run."""
    from local.users import create_user, find_user
    from shared.core.errors import NotFound

    try:
        user_id, _ = await find_user(database_url, DEMO_EMAIL)
    except NotFound:
        user_id = await create_user(database_url, DEMO_EMAIL, credits=DEMO_CREDITS)
    return str(user_id)


def read_dev_env(local_dir: Path) -> dict[str, str]:
    """What the last `wanctl dev` wrote to .local/dev.env (empty if it never ran)."""
    values: dict[str, str] = {}
    env_file = local_dir / "dev.env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            key, _, value = line.partition("=")
            values[key] = shlex.split(value)[0] if value else ""
    return values


def dev_mode(local_dir: Path) -> DevMode:
    """The configuration the local stack runs: WAN_DEV_MODE, else the last `wanctl dev`'s."""
    mode = os.environ.get("WAN_DEV_MODE") or read_dev_env(local_dir).get("WAN_DEV_MODE")
    return "direct" if mode == "direct" else "supabase"


def dev_settings(
    mode: DevMode,
    *,
    local_dir: Path,
    secrets: LocalSecrets,
    database_url: str,
    port: int,
) -> Settings:
    """The settings of the local stack on `port` (the API; the Replicate emulator on port + 1,
    the Supabase emulator on port + 2, the Stripe emulator on port + 3) in configuration
    `mode`."""
    api_url, supabase_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 2}"
    stripe_url = f"http://127.0.0.1:{port + 3}"
    production = supabase_overrides(secrets, supabase_url) if mode == "supabase" else {}
    return local_settings(
        database_url=database_url,
        api_url=api_url,
        emulator_url=f"http://127.0.0.1:{port + 1}",
        secrets=secrets,
        storage_dir=local_dir / "storage",
        stripe_base_url=stripe_url,
        # No frontend locally: the buyer lands on the emulator's own pages.
        checkout_success_url=stripe_url + "/c/done?session_id={CHECKOUT_SESSION_ID}",
        checkout_cancel_url=stripe_url + "/c/canceled",
        **production,
    )


def last_dev_settings(local_dir: Path, database_url: str | None = None) -> tuple[Settings, str]:
    """The settings of the last `wanctl dev` (its configuration and ports), and its database
    URL: what `wanctl sweep` and `wanctl doctor --local` run against."""
    secrets = load_local_secrets(local_dir)
    url = database_url or start_embedded(local_dir / "pgdata").get_uri()
    api_url = read_dev_env(local_dir).get("API_URL", "http://127.0.0.1:8000")
    port = int(api_url.rsplit(":", 1)[1])
    settings = dev_settings(
        dev_mode(local_dir), local_dir=local_dir, secrets=secrets, database_url=url, port=port
    )
    return settings, url


async def sweep_local(
    *, local_dir: Path, database_url: str | None = None
) -> dict[str, int | float]:
    """One reconciliation pass against the local stack (what `wanctl sweep` runs), in the
    configuration and on the ports of the last `wanctl dev` (production's: the stack must be
    running, its emulated PostgREST and Storage are where the pass reads and writes)."""
    from functions.sweeper import run_once

    settings, _ = last_dev_settings(local_dir, database_url)
    return (await run_once(settings)).as_dict()


_MODE_TEXT: dict[DevMode, str] = {
    "supabase": "RPC through the Supabase emulator's PostgREST, files in its Storage (videos "
    "served by its signed links), ES256 tokens through its JWKS; "
    "WAN_DEV_MODE=direct or --direct for psycopg, the local folder and HS256",
    "direct": "psycopg to the database, files in the local folder served by the API, "
    "HS256 tokens with the legacy secret",
}


async def _started(
    servers: list[uvicorn.Server],
    tasks: list[asyncio.Task[None]],
    port: int,
    stopping: asyncio.Event,
) -> None:
    """Wait until every server listens; if one fails to start, stop them all and say so (a
    stop asked for meanwhile is no failure)."""
    while not all(s.started for s in servers):
        if any(t.done() for t in tasks):
            break
        await asyncio.sleep(0.05)  # polling uvicorn's flag: it offers no event to wait on
    if not all(s.started for s in servers) and not stopping.is_set():
        for s in servers:
            s.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
        raise SystemExit(f"could not start the local stack (ports {port}-{port + 3} free?)")


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
    mode: DevMode = "supabase",
    supabase_faults_json: str | None = None,
    stripe_faults_json: str | None = None,
) -> None:
    """Start everything, print how to use it, and serve until interrupted.

    Ports: the API on `port`, the Replicate emulator on `port + 1`, the Supabase emulator on
    `port + 2` (started in both modes: the direct one simply does not call it), the Stripe
    emulator on `port + 3`. Emulated Storage
    keeps its files in `local_dir/supabase-storage`, the local folder's are in `local_dir/storage`.
    """
    import uvicorn

    from local.devserver import create_app
    from local.emulator import create_emulator_app
    from local.emulator_faults import EmulatorConfig, Faults
    from local.stripe_emulator import create_stripe_emulator_app
    from local.stripe_engine import StripeEmulatorConfig, StripeFaults
    from local.supabase.app import create_app as create_supabase_app

    secrets = load_local_secrets(local_dir)
    from shared.db.migrate import configure_database

    database_url = start_embedded(local_dir / "pgdata").get_uri()
    applied = await prepare(database_url)

    api_url = f"http://127.0.0.1:{port}"
    emulator_url = f"http://127.0.0.1:{port + 1}"
    supabase_url = f"http://127.0.0.1:{port + 2}"
    stripe_url = f"http://127.0.0.1:{port + 3}"
    settings = dev_settings(
        mode, local_dir=local_dir, secrets=secrets, database_url=database_url, port=port
    )
    await configure_database(database_url, signup_bonus_credits=settings.signup_bonus_credits)
    demo_id = await ensure_demo_user(database_url)
    token = mint_local_token(secrets, demo_id, mode, email=DEMO_EMAIL)
    emulator = create_emulator_app(
        EmulatorConfig(
            api_token=secrets.replicate_api_token,
            webhook_secret=secrets.webhook_secret,
            faults=Faults.model_validate(
                {"duration_s": emulator_duration_s, **json.loads(faults_json or "{}")}
            ),
        )
    )
    supabase = create_supabase_app(
        supabase_emulator_config(
            secrets,
            database_url,
            local_dir / "supabase-storage",
            buckets=storage_buckets(settings),
            faults=json.loads(supabase_faults_json or "{}"),
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

    class Server(uvicorn.Server):
        """Signals are handled once for the whole stack (below): each uvicorn server would
        otherwise take them over, and the first to finish would raise the signal again while
        the others were still shutting down (their lifespans cut short, exit status 1)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    def server(app: ASGIApp, app_port: int, level: str = "warning") -> uvicorn.Server:
        config = uvicorn.Config(app, host="127.0.0.1", port=app_port, log_level=level)
        return Server(config)

    # The emulators first: the API's startup reads the JWKS when it starts.
    backends = [
        server(emulator, port + 1),
        server(supabase, port + 2),
        server(stripe_emulator, port + 3),
    ]
    servers = [*backends, server(api, port, "info")]

    env = {
        "WAN_DEV_MODE": mode,
        "RPC_TRANSPORT": settings.rpc_transport,
        "STORAGE_BACKEND": settings.storage_backend,
        "API_URL": api_url,
        "DATABASE_URL": database_url,
        "DEMO_USER_ID": demo_id,
        "DEMO_TOKEN": token,
        "REPLICATE_BASE_URL": emulator_url,
        "WEBHOOK_SECRET": secrets.webhook_secret,
        "SUPABASE_URL": supabase_url,
        "SUPABASE_ANON_KEY": secrets.anon_key,
        "SUPABASE_SERVICE_ROLE_KEY": secrets.service_role_key,
        "SUPABASE_JWKS_URL": supabase_url + JWKS_PATH,
        "STRIPE_BASE_URL": stripe_url,
        "STRIPE_SECRET_KEY": secrets.stripe_secret_key,
        "STRIPE_WEBHOOK_SECRET": secrets.stripe_webhook_secret,
    }
    env_file = local_dir / "dev.env"
    env_file.write_text("".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items()))
    env_file.chmod(0o600)

    # SIGINT (Ctrl-C) and SIGTERM stop every server gracefully, then the embedded PostgreSQL
    # (at exit); the status is 0.
    stopping = asyncio.Event()

    def stop() -> None:
        stopping.set()
        for s in servers:
            s.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    tasks = [asyncio.create_task(s.serve()) for s in backends]
    sweeper = asyncio.create_task(sweep_forever(settings))
    try:
        await _started(backends, tasks, port, stopping)
        tasks.append(asyncio.create_task(servers[-1].serve()))
        await _started(servers, tasks, port, stopping)
        if not stopping.is_set():
            _announce(mode, applied, env, env_file, api_url)
        await asyncio.gather(*tasks)
    finally:
        sweeper.cancel()
        stop()
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _announce(
    mode: DevMode, applied: list[str], env: dict[str, str], env_file: Path, api_url: str
) -> None:
    """How to use the running stack."""

    _out(f"configuration: {mode} ({_MODE_TEXT[mode]})")
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
