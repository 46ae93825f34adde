"""`wanctl`: the operator's command line.

    wanctl dev [--port 8000] [--direct]          the whole local stack, in the foreground
    wanctl migrate [--database-url URL]          apply pending migrations
    wanctl user create EMAIL [--credits N] [--unconfirmed]
                                                 local stack: sign a user up, print id and token
    wanctl token USER                            local stack: mint an access token for a user
    wanctl credits grant USER AMOUNT [--reason]  add credits through add_credits
    wanctl sweep                                 one reconciliation pass, printed
    wanctl purchases USER                        a user's purchases (payments support)
    wanctl hold lift USER --reason TEXT          lift a user's hold, saying why
    wanctl stats [--since 24h] [--json]          the operator's numbers with their targets
    wanctl doctor [--local]                      check settings against the real services

Without --database-url (or DATABASE_URL), commands use the local stack's embedded database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from shared.core.errors import AppError

if TYPE_CHECKING:
    from shared.core.config import Settings
    from shared.db.purchases import PurchaseStore

LOCAL_DIR = Path(".local")


def out(line: str = "") -> None:
    """Write one line for the operator (the project bans print)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def database_url(explicit: str | None) -> str:
    """The named database, or the local stack's embedded one (started or joined)."""
    url = explicit or os.environ.get("DATABASE_URL")
    if url:
        return url
    from local.database import start_embedded

    return start_embedded(LOCAL_DIR / "pgdata").get_uri()


async def cmd_migrate(args: argparse.Namespace) -> int:
    from local.database import bootstrap
    from shared.db.migrate import apply_migrations, configure_database

    url = database_url(args.database_url)
    local = not (args.database_url or os.environ.get("DATABASE_URL"))
    if (args.bootstrap or local) and await bootstrap(url):
        out("applied the Supabase-compatible bootstrap (roles, auth schema)")
    applied = await apply_migrations(url)
    out(f"applied: {', '.join(applied)}" if applied else "up to date")
    # Settings the database keeps for code that takes no arguments (the signup trigger).
    bonus = _settings().signup_bonus_credits
    await configure_database(url, signup_bonus_credits=bonus)
    out(f"configured: SIGNUP_BONUS_CREDITS={bonus}")
    return 0


def _settings() -> Settings:
    from shared.core.config import Settings

    return Settings()


async def cmd_user_create(args: argparse.Namespace) -> int:
    from local.database import prepare
    from local.users import create_user

    url = database_url(args.database_url)
    await prepare(url)
    user_id = await create_user(
        url, args.email, credits=args.credits, confirmed=not args.unconfirmed
    )
    out(f"user_id: {user_id}")
    out(f"token: {_token_for(user_id, args.email)}")
    return 0


def _token_for(user_id: uuid.UUID, email: str | None) -> str:
    """An access token the local stack's API accepts in its configuration (`dev_mode`): ES256
    with the local project's signing key, or HS256 with its legacy secret (direct)."""
    from local.configs import mint_local_token
    from local.secrets import load_local_secrets
    from local.stack import dev_mode

    secrets = load_local_secrets(LOCAL_DIR)
    return mint_local_token(secrets, user_id, dev_mode(LOCAL_DIR), email=email)


async def cmd_token(args: argparse.Namespace) -> int:
    from local.users import find_user

    url = database_url(args.database_url)
    user_id, email = await find_user(url, args.user)
    out(_token_for(user_id, email))
    return 0


async def cmd_credits_grant(args: argparse.Namespace) -> int:
    from local.users import find_user
    from shared.db.rpc import PostgresTransport, Rpc

    url = database_url(args.database_url)
    user_id, _ = await find_user(url, args.user)
    rpc = Rpc(await PostgresTransport.open(url, role="service_role"))
    try:
        balance = await rpc.add_credits(
            user_id, args.amount, type=args.type, description=args.reason
        )
    finally:
        await rpc.aclose()
    out(json.dumps({"user_id": str(user_id), "granted": args.amount, "balance": balance}))
    return 0


async def cmd_dev(args: argparse.Namespace) -> int:
    from local.stack import run_dev

    faults = args.emulator_faults or os.environ.get("EMULATOR_FAULTS")
    direct = args.direct or os.environ.get("WAN_DEV_MODE") == "direct"
    await run_dev(
        port=args.port,
        local_dir=LOCAL_DIR,
        faults_json=faults,
        mode="direct" if direct else "supabase",
        supabase_faults_json=args.supabase_faults or os.environ.get("SUPABASE_EMULATOR_FAULTS"),
        stripe_faults_json=args.stripe_faults or os.environ.get("STRIPE_EMULATOR_FAULTS"),
    )
    return 0


async def cmd_sweep(args: argparse.Namespace) -> int:
    from local.stack import sweep_local

    summary = await sweep_local(local_dir=LOCAL_DIR, database_url=args.database_url)
    out(json.dumps(summary))
    return 0


async def cmd_stats(args: argparse.Namespace) -> int:
    from functions.admin import operator_stats, parse_window
    from local.stats_format import format_stats
    from shared.db.rpc import PostgresTransport, Rpc

    window = parse_window(args.since)
    rpc = Rpc(await PostgresTransport.open(database_url(args.database_url), role="service_role"))
    try:
        stats = await operator_stats(rpc, _settings(), window)
    finally:
        await rpc.aclose()
    if args.json:
        out(json.dumps(stats, indent=2, sort_keys=True))
    else:
        for line in format_stats(stats):
            out(line)
    return 0


async def _payments(url: str) -> PurchaseStore:
    from shared.db.purchases import PurchaseStore
    from shared.db.rpc import PostgresTransport

    return PurchaseStore(await PostgresTransport.open(url, role="service_role"))


async def cmd_purchases(args: argparse.Namespace) -> int:
    from local.users import find_user

    url = database_url(args.database_url)
    user_id, _ = await find_user(url, args.user)
    store = await _payments(url)
    try:
        found = await store.list_purchases(user_id, limit=args.limit)
    finally:
        await store.transport.aclose()
    for purchase in found:
        out(purchase.model_dump_json())
    if not found:
        out(f"no purchases for {user_id}")
    return 0


async def cmd_hold_lift(args: argparse.Namespace) -> int:
    from local.users import find_user

    url = database_url(args.database_url)
    user_id, _ = await find_user(url, args.user)
    store = await _payments(url)
    try:
        was_held, previous = await store.lift_hold(user_id, args.reason)
    finally:
        await store.transport.aclose()
    out(json.dumps({"user_id": str(user_id), "was_held": was_held, "hold_reason": previous}))
    return 0


async def cmd_doctor(args: argparse.Namespace) -> int:
    from local.doctor import run_checks

    url: str | None
    if args.local:
        from local.stack import last_dev_settings

        settings, url = last_dev_settings(LOCAL_DIR)
    else:
        from shared.core.config import Settings

        settings = Settings()
        url = args.database_url or os.environ.get("DATABASE_URL")
    checks = await run_checks(settings, database_url=url)
    for check in checks:
        for line in check.lines():
            out(line)
    failed = sum(check.outcome == "fail" for check in checks)
    out(f"{len(checks) - failed} of {len(checks)} checks did not fail" if failed else "all green")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wanctl", description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="a Postgres URL (default: DATABASE_URL or local)")
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="run the whole local stack in the foreground")
    dev.add_argument("--port", type=int, default=8000)
    dev.add_argument(
        "--emulator-faults",
        metavar="JSON",
        help="emulator fault knobs at start, e.g. '{\"webhook_drop_rate\": 0.5}' "
        "(or EMULATOR_FAULTS); change them later with POST /__emulator/faults",
    )
    dev.add_argument(
        "--supabase-faults",
        metavar="JSON",
        help="Supabase emulator fault knobs at start, e.g. '{\"gateway_error_rate\": 0.1}' "
        "(or SUPABASE_EMULATOR_FAULTS); change them with POST $SUPABASE_URL/__emulator/faults",
    )
    dev.add_argument(
        "--stripe-faults",
        metavar="JSON",
        help="Stripe emulator knobs at start, e.g. '{\"webhook_drop_rate\": 1}' "
        "(or STRIPE_EMULATOR_FAULTS); change them with POST $STRIPE_BASE_URL/__emulator/faults",
    )
    dev.add_argument(
        "--direct",
        action="store_true",
        help="the direct configuration (psycopg, HS256 tokens) instead of production's "
        "(PostgREST RPC and JWKS through the Supabase emulator); or WAN_DEV_MODE=direct",
    )
    dev.set_defaults(handler=cmd_dev)

    migrate = sub.add_parser("migrate", help="apply pending migrations")
    migrate.add_argument("--database-url", dest="database_url", default=argparse.SUPPRESS)
    migrate.add_argument(
        "--bootstrap",
        action="store_true",
        help="first create Supabase's roles and auth schema (plain Postgres only)",
    )
    migrate.set_defaults(handler=cmd_migrate)

    user = sub.add_parser("user", help="local users").add_subparsers(dest="action", required=True)
    create = user.add_parser("create", help="sign a user up (through auth.users)")
    create.add_argument("email")
    create.add_argument("--credits", type=int, default=None, help="set the starting balance")
    create.add_argument(
        "--unconfirmed",
        action="store_true",
        help="leave the email unconfirmed (no signup bonus until it is confirmed)",
    )
    create.set_defaults(handler=cmd_user_create)

    token = sub.add_parser("token", help="mint an access token for a user (id or email)")
    token.add_argument("user")
    token.set_defaults(handler=cmd_token)

    credits = sub.add_parser("credits", help="credits").add_subparsers(dest="action", required=True)
    grant = credits.add_parser("grant", help="add credits through add_credits")
    grant.add_argument("user", help="user id or email")
    grant.add_argument("amount", type=int)
    grant.add_argument("--reason", default="Granted by operator")
    grant.add_argument("--type", default="bonus", choices=["bonus", "purchase", "adjustment"])
    grant.set_defaults(handler=cmd_credits_grant)

    sweep = sub.add_parser("sweep", help="run one reconciliation pass now and print it")
    sweep.set_defaults(handler=cmd_sweep)

    bought = sub.add_parser("purchases", help="a user's purchases, newest first (JSON lines)")
    bought.add_argument("user", help="user id or email")
    bought.add_argument("--limit", type=int, default=50)
    bought.set_defaults(handler=cmd_purchases)

    hold = sub.add_parser("hold", help="account holds").add_subparsers(dest="action", required=True)
    lift = hold.add_parser("lift", help="lift a user's hold (payments: dispute, credits owed)")
    lift.add_argument("user", help="user id or email")
    lift.add_argument("--reason", required=True, help="why the hold is lifted (kept on the user)")
    lift.set_defaults(handler=cmd_hold_lift)

    stats = sub.add_parser("stats", help="the operator's numbers with their targets")
    stats.add_argument("--since", default="24h", help="how far back: 30m, 24h, 7d (default 24h)")
    stats.add_argument("--json", action="store_true", help="the figures as JSON")
    stats.set_defaults(handler=cmd_stats)
    doctor = sub.add_parser("doctor", help="check a deployment's settings against its services")
    doctor.add_argument(
        "--local", action="store_true", help="check the running local stack (.local/dev.env)"
    )
    doctor.set_defaults(handler=cmd_doctor)
    return parser


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not hasattr(args, "database_url"):
        args.database_url = None
    if args.command == "dev":
        # Until the stack's servers run (PostgreSQL starting, migrations), SIGTERM is an
        # interrupt, as Ctrl-C is: the process ends normally and pgserver stops the embedded
        # PostgreSQL at exit. Once they run, local.stack.run_dev handles both signals itself.
        signal.signal(signal.SIGTERM, _interrupted)
    try:
        code: int = asyncio.run(args.handler(args))
    except AppError as exc:
        sys.stderr.write(f"wanctl: {exc.detail} ({exc.code})\n")
        return 2
    except OSError as exc:
        sys.stderr.write(f"wanctl: {exc}\n")
        return 2
    except Exception as exc:
        import psycopg

        if not isinstance(exc, psycopg.Error):
            raise
        sys.stderr.write(f"wanctl: database error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    raise SystemExit(main())
