"""The guardrails' adapters at their edges: removing stored files, deleting auth users, reading
the provider's metrics, the admin claim, and settings for the local stack from the environment."""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path

import httpx
import jwt
import pytest

from local.secrets import load_local_secrets
from local.stack import local_settings
from shared.core.catalog import load_catalog
from shared.core.config import Settings
from shared.core.errors import AuthUnavailable, DatabaseUnavailable
from shared.provider.replicate import Prediction
from shared.storage.local import LocalStorage
from shared.storage.port import StorageUnavailable
from shared.storage.supabase import SupabaseStorage
from shared.web.auth import Authenticator
from shared.web.auth_admin import PostgresAuthAdmin, SupabaseAuthAdmin

SUPABASE_URL = "https://project.supabase.co"
SERVICE_KEY = "service-role-key"
SECRET = "local-test-jwt-secret-with-at-least-32-bytes"


# --- storage.remove -----------------------------------------------------------------------------


async def test_local_remove_deletes_the_files_and_ignores_missing_ones(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path, "http://127.0.0.1:8000", "k" * 32)
    await storage.put_bytes("u/videos/a.mp4", b"a", "video/mp4")
    await storage.put_bytes("u/videos/b.mp4", b"b", "video/mp4")
    await storage.remove(["u/videos/a.mp4", "u/videos/never.mp4"])
    assert not await storage.exists("u/videos/a.mp4")
    assert await storage.exists("u/videos/b.mp4")


async def test_local_list_files_finds_every_file_under_a_folder(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path, "http://127.0.0.1:8000", "k" * 32)
    for path in ("u/videos/a.mp4", "u/inputs/b.png", "other/videos/c.mp4"):
        await storage.put_bytes(path, b"x", "application/octet-stream")
    assert await storage.list_files("u") == ["u/inputs/b.png", "u/videos/a.mp4"]
    assert await storage.list_files("nobody") == []


async def test_supabase_remove_refused_is_storage_unavailable() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"statusCode": "500", "error": "x", "message": "down"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    storage = SupabaseStorage(SUPABASE_URL, SERVICE_KEY, "generations", http=http)
    with pytest.raises(StorageUnavailable) as caught:
        await storage.remove(["u/videos/a.mp4"])
    assert caught.value.code == "storage_unavailable"


# --- auth admin -----------------------------------------------------------------------------------


def auth_admin(status: int, seen: list[httpx.Request]) -> SupabaseAuthAdmin:
    async def handler(request: httpx.Request) -> httpx.Response:
        await request.aread()
        seen.append(request)
        if status == 200:
            return httpx.Response(200, json={})
        return httpx.Response(status, json={"code": status, "msg": "nope"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return SupabaseAuthAdmin(SUPABASE_URL, SERVICE_KEY, http=http)


async def test_auth_user_is_deleted_through_the_admin_api() -> None:
    seen: list[httpx.Request] = []
    user = uuid.uuid4()
    await auth_admin(200, seen).delete_user(user)
    (request,) = seen
    assert request.method == "DELETE"
    assert str(request.url) == f"{SUPABASE_URL}/auth/v1/admin/users/{user}"
    assert request.headers["authorization"] == f"Bearer {SERVICE_KEY}"
    assert request.headers["apikey"] == SERVICE_KEY


async def test_auth_user_already_gone_is_not_an_error() -> None:
    await auth_admin(404, []).delete_user(uuid.uuid4())


async def test_auth_admin_failure_is_auth_unavailable() -> None:
    with pytest.raises(AuthUnavailable):
        await auth_admin(500, []).delete_user(uuid.uuid4())


# --- the provider's metrics and the catalog's prices ---------------------------------------------


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        ({"predict_time": 42.5}, 42.5),
        ({"predict_time": 3}, 3.0),
        ({}, None),
        (None, None),
        ({"predict_time": "42"}, None),
        ({"predict_time": True}, None),
        ({"predict_time": -1}, None),
        ({"predict_time": 10**9}, None),
    ],
)
def test_predict_time_is_read_only_when_sane(metrics: object, expected: float | None) -> None:
    prediction = Prediction.model_validate({"id": "p", "status": "succeeded", "metrics": metrics})
    assert prediction.predict_time == expected


def test_every_offering_has_a_price_per_second() -> None:
    catalog = load_catalog(None)
    assert all(o.price_per_s > 0 for o in catalog.offerings.values())


# --- the admin claim ------------------------------------------------------------------------------


def token(**claims: object) -> str:
    now = int(time.time())
    base: dict[str, object] = {
        "sub": str(uuid.uuid4()),
        "aud": "authenticated",
        "role": "authenticated",
        "iat": now,
        "exp": now + 600,
    }
    return jwt.encode({**base, **claims}, SECRET, algorithm="HS256")


@pytest.mark.parametrize(
    ("claims", "is_admin"),
    [
        ({"app_metadata": {"role": "admin"}}, True),
        ({"app_metadata": {"role": "support"}}, False),
        ({"app_metadata": {}}, False),
        ({"app_metadata": "admin"}, False),
        ({"user_metadata": {"role": "admin"}}, False),  # the user can write user_metadata
        ({}, False),
    ],
)
async def test_admin_is_only_app_metadata_role_admin(
    claims: dict[str, object], is_admin: bool
) -> None:
    settings = Settings(environment="test", supabase_jwt_secret=SECRET)
    auth = Authenticator.from_settings(settings)
    user = await auth.authenticate(f"Bearer {token(**claims)}")
    assert user.is_admin is is_admin


# --- settings for the local stack ----------------------------------------------------------------


def test_environment_reaches_the_local_stack_but_not_its_wiring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREATE_RATE_PER_MINUTE", "2")
    monkeypatch.setenv("PROVIDER_DAILY_BUDGET_USD", "0.25")
    monkeypatch.setenv("RETENTION_DAYS", "0")
    monkeypatch.setenv("ENVIRONMENT", "test")
    monkeypatch.setenv("DATABASE_URL", "postgresql://elsewhere/db")
    settings = local_settings(
        database_url="postgresql://local/db",
        api_url="http://127.0.0.1:8000",
        emulator_url="http://127.0.0.1:8001",
        secrets=load_local_secrets(tmp_path),
        max_active_generations=5,
    )
    assert settings.create_rate_per_minute == 2
    assert settings.provider_daily_budget_usd == 0.25
    assert settings.retention_days == 0
    assert settings.environment == "test"  # the environment overrides the stack's default
    assert settings.database_url is not None
    assert settings.database_url.get_secret_value() == "postgresql://local/db"  # wired
    assert settings.max_active_generations == 5  # explicit overrides win


def test_local_stack_defaults_hold_without_environment(tmp_path: Path) -> None:
    settings = local_settings(
        database_url="postgresql://local/db",
        api_url="http://127.0.0.1:8000",
        emulator_url="http://127.0.0.1:8001",
        secrets=load_local_secrets(tmp_path),
    )
    assert settings.environment == "development"
    assert settings.create_rate_per_minute == 10
    assert settings.provider_daily_budget_usd is None


async def test_direct_auth_admin_out_of_reach_is_database_unavailable() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    admin = PostgresAuthAdmin(f"postgresql://postgres@127.0.0.1:{port}/postgres")
    with pytest.raises(DatabaseUnavailable):
        await admin.delete_user(uuid.uuid4())
