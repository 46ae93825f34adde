"""wanctl against a test database: users through the signup trigger, grants, tokens, sweeps."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Protocol

import jwt
import pytest

from local import cli
from local.configs import DevMode
from local.secrets import LocalSecrets
from local.stack import dev_settings
from local.supabase.context import JWKS_PATH
from shared.core.config import Settings
from shared.db.legacy import LEGACY_CHECKSUMS
from shared.web.auth import Authenticator
from tests.support import AdminConn, balance, create_user


class Wanctl(Protocol):
    async def __call__(self, *args: str) -> tuple[int, str]: ...


@pytest.fixture
def wanctl(database_url: str, capsys: pytest.CaptureFixture[str]) -> Wanctl:
    """wanctl against the test database: its exit code and all it printed. It runs in a thread
    of its own, as it runs its own event loop (asyncio.run)."""

    def run(*args: str) -> tuple[int, str]:
        code = cli.main(["--database-url", database_url, *args])
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    async def in_thread(*args: str) -> tuple[int, str]:
        return await asyncio.to_thread(run, *args)

    return in_thread


@pytest.fixture
def local_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """wanctl's local folder: the one where the `local_secrets` fixture (behind the Supabase
    emulator) keeps the project's secrets."""
    local_dir = tmp_path / "secrets"
    monkeypatch.setattr(cli, "LOCAL_DIR", local_dir)
    return local_dir


async def test_user_create_grant_and_token(
    wanctl: Wanctl,
    admin: AdminConn,
    monkeypatch: pytest.MonkeyPatch,
    supabase_url: str,
    local_dir: Path,
) -> None:
    monkeypatch.delenv("WAN_DEV_MODE", raising=False)
    code, out = await wanctl("user", "create", "ops@example.test", "--credits", "40")
    assert code == 0, out
    user_id = uuid.UUID(out.split("user_id: ")[1].split()[0])
    assert await balance(admin, user_id) == 40

    code, out = await wanctl("credits", "grant", "ops@example.test", "15", "--reason", "goodwill")
    assert code == 0, out
    assert json.loads(out)["balance"] == 55

    # By default the local stack runs production's configuration: ES256, through the JWKS of
    # the Supabase emulator (which serves the same local project's keys).
    code, token = await wanctl("token", str(user_id))
    assert code == 0
    jwks = Settings(supabase_jwks_url=supabase_url + JWKS_PATH, environment="test")
    assert jwt.get_unverified_header(token.strip())["alg"] == "ES256"
    auth = Authenticator.from_settings(jwks)
    assert (await auth.authenticate(f"Bearer {token.strip()}")).id == user_id

    monkeypatch.setenv("WAN_DEV_MODE", "direct")  # the direct configuration: HS256
    code, token = await wanctl("token", str(user_id))
    assert code == 0
    secret = json.loads((local_dir / "secrets.json").read_text())["jwt_secret"]
    auth = Authenticator.from_settings(Settings(supabase_jwt_secret=secret, environment="test"))
    assert (await auth.authenticate(f"Bearer {token.strip()}")).id == user_id


async def test_unknown_user_is_a_clean_error(wanctl: Wanctl) -> None:
    code, out = await wanctl("credits", "grant", "nobody@x", "5")
    assert code == 2
    assert "No user 'nobody@x'" in out


async def test_migrate_is_up_to_date_on_a_migrated_database(wanctl: Wanctl) -> None:
    code, out = await wanctl("migrate")
    assert code == 0
    assert out.splitlines() == ["up to date", "configured: SIGNUP_BONUS_CREDITS=100"]


async def test_migrate_writes_the_signup_bonus_setting(
    wanctl: Wanctl, admin: AdminConn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNUP_BONUS_CREDITS", "40")
    code, out = await wanctl("migrate")
    assert code == 0, out
    cur = await admin.execute("select signup_bonus_credits from private.guardrail_config")
    assert await cur.fetchone() == (40,)


async def test_user_create_unconfirmed_has_no_bonus_until_confirmed(
    wanctl: Wanctl, admin: AdminConn, local_dir: Path
) -> None:
    code, out = await wanctl("user", "create", "new@example.test", "--unconfirmed")
    assert code == 0, out
    user_id = uuid.UUID(out.split("user_id: ")[1].split()[0])
    assert await balance(admin, user_id) == 0
    await admin.execute(
        "update auth.users set email_confirmed_at = now() where id = %s", (user_id,)
    )
    assert await balance(admin, user_id) == 100


async def test_stats_print_each_figure_with_its_target(wanctl: Wanctl, admin: AdminConn) -> None:
    await create_user(admin)
    code, out = await wanctl("stats", "--since", "7d")
    assert code == 0, out
    assert "generation success rate" in out
    assert "target > 95.0%" in out
    assert "credit accuracy" in out
    code, out = await wanctl("stats", "--json")
    assert code == 0, out
    stats = json.loads(out)
    assert stats["credit_accuracy"]["met"] is True
    assert stats["success_rate"]["met"] is None  # nothing finished yet
    code, out = await wanctl("stats", "--since", "forever")
    assert code == 2
    assert "since must look like" in out


async def test_migrate_on_a_partly_migrated_old_database_says_how_to_reset(
    wanctl: Wanctl, admin: AdminConn
) -> None:
    await admin.execute("delete from app_migrations.applied")
    await admin.execute(
        "insert into app_migrations.applied (version, name, checksum)"
        " values ('0001', 'tables', %s)",
        (LEGACY_CHECKSUMS["0001"],),
    )
    code, out = await wanctl("migrate")
    assert code == 2
    assert "partly migrated" in out
    assert "rm -rf .local/pgdata" in out


async def test_sweep_prints_one_summary(
    wanctl: Wanctl, monkeypatch: pytest.MonkeyPatch, local_dir: Path
) -> None:
    # Production's configuration sweeps through the running stack's emulator; none runs here.
    monkeypatch.setenv("WAN_DEV_MODE", "direct")
    code, out = await wanctl("sweep")
    assert code == 0, out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["claimed"] == 0
    assert summary["batches"] == 1


def test_dev_stack_runs_production_configuration_unless_direct(
    local_secrets: LocalSecrets, tmp_path: Path
) -> None:
    def settings(mode: DevMode) -> Settings:
        return dev_settings(
            mode,
            local_dir=tmp_path,
            secrets=local_secrets,
            database_url="postgresql://x",
            port=8600,
        )

    production, direct = settings("supabase"), settings("direct")
    assert (production.rpc_transport, production.storage_backend) == ("supabase", "supabase")
    assert production.supabase_url == "http://127.0.0.1:8602"
    assert production.supabase_jwks_url == "http://127.0.0.1:8602" + JWKS_PATH
    assert production.supabase_jwt_secret is None  # ES256 through the JWKS only
    assert (direct.rpc_transport, direct.storage_backend) == ("postgres", "local")
    assert direct.storage_public_base_url == "http://127.0.0.1:8600"


async def test_purchases_and_hold_lift_for_payments_support(
    wanctl: Wanctl, database_url: str, admin: AdminConn
) -> None:
    from shared.core.purchases import StripeFact
    from shared.db.purchases import PurchaseStore
    from shared.db.rpc import PostgresTransport
    from shared.payments.packs import DEFAULT_PACKS
    from tests.support import create_user

    user = await create_user(admin, credits=0, email="buyer@example.test")
    store = PurchaseStore(await PostgresTransport.open(database_url, role="service_role"))
    try:
        bought, _ = await store.create_purchase(
            user, DEFAULT_PACKS[0], idempotency_key=None, rate_per_minute=None
        )
        await store.apply_event(
            StripeFact(
                "evt_a",
                "checkout.session.completed",
                purchase_id=bought.id,
                payment_intent="pi_a",
                payment_status="paid",
                amount=500,
                currency="usd",
            )
        )
        await store.apply_event(StripeFact("evt_b", "charge.dispute.created", payment_intent="pi_a",
                                           dispute_id="dp_a", dispute_amount=500,
                                           dispute_status="open"))  # fmt: skip
    finally:
        await store.transport.aclose()

    code, out = await wanctl("purchases", "buyer@example.test")
    assert code == 0, out
    listed = json.loads(out.strip())
    assert (listed["status"], listed["dispute_status"]) == ("paid", "open")

    why = "customer called; dispute filed by mistake"
    code, out = await wanctl("hold", "lift", str(user), "--reason", why)
    assert code == 0, out
    assert json.loads(out) == {
        "user_id": str(user),
        "was_held": True,
        "hold_reason": "a card payment is disputed",
    }
    cur = await admin.execute(
        "select held_at, hold_lift_reason from public.users where id = %s", (user,)
    )
    assert await cur.fetchone() == (None, why)
