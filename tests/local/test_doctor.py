"""`wanctl doctor` against the Replicate emulator, a Supabase-shaped JWKS and Storage, and a real
database: every check passes on a good deployment and each bad setting fails with its fix."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from jwt.algorithms import ECAlgorithm
from pydantic import SecretStr

from local import cli
from local.database import create_database, drop_database
from local.doctor import Check, run_checks
from local.emulator import create_emulator_app
from local.emulator_faults import EmulatorConfig
from local.serve import serve
from shared.core.config import Settings

TOKEN = "r8_doctor_test_token"
SECRET = "whsec_" + base64.b64encode(b"doctor-test-signing-key-32-bytes").decode()
SERVICE_KEY = "service-role-key-for-doctor-tests"
MB = 1024 * 1024


class Supabase:
    """The two Supabase answers doctor reads: the JWKS and a bucket. Each test sets them."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.bucket: dict[str, Any] | None = None

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/auth/v1/.well-known/jwks.json")
        async def jwks() -> dict[str, Any]:
            return {"keys": self.keys}

        @app.get("/storage/v1/bucket/{bucket_id}")
        async def bucket(bucket_id: str, request: Request) -> JSONResponse:
            if request.headers.get("authorization") != f"Bearer {SERVICE_KEY}":
                return JSONResponse({"statusCode": "403", "error": "Unauthorized"}, 400)
            if self.bucket is None or self.bucket["id"] != bucket_id:
                return JSONResponse(
                    {"statusCode": "404", "error": "Bucket not found", "message": "not found"},
                    400,
                )
            return JSONResponse(self.bucket)

        return app


def ec_jwk() -> dict[str, Any]:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    jwk: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(key))
    return {**jwk, "kid": "doctor-key", "alg": "ES256", "use": "sig"}


@pytest.fixture(scope="module")
def replicate_url() -> Iterator[str]:
    config = EmulatorConfig(api_token=TOKEN, webhook_secret=SECRET, seed=7)
    with serve(create_emulator_app(config)) as url:
        yield url


@pytest.fixture(scope="module")
def supabase_server() -> Iterator[tuple[Supabase, str]]:
    fake = Supabase()
    with serve(fake.app()) as url:
        yield fake, url


@pytest.fixture
def supabase(supabase_server: tuple[Supabase, str]) -> Supabase:
    fake = supabase_server[0]
    fake.keys = [ec_jwk()]
    fake.bucket = {"id": "generations", "name": "generations", "public": False,
                   "file_size_limit": 50 * MB}  # fmt: skip
    return fake


@pytest.fixture
def settings(replicate_url: str, supabase_server: tuple[Supabase, str]) -> Settings:
    supabase_url = supabase_server[1]
    return Settings(
        environment="test",
        supabase_url=supabase_url,
        supabase_service_role_key=SecretStr(SERVICE_KEY),
        supabase_jwks_url=f"{supabase_url}/auth/v1/.well-known/jwks.json",
        replicate_api_token=SecretStr(TOKEN),
        replicate_base_url=replicate_url,
        replicate_webhook_secret=SecretStr(SECRET),
        public_webhook_url="https://example.modal.run/api/webhooks/replicate",
        storage_backend="supabase",
        max_output_bytes=50 * MB,
    )


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


async def test_a_good_deployment_passes_every_check(
    settings: Settings, supabase: Supabase, database_url: str
) -> None:
    checks = await run_checks(settings, database_url=database_url)
    assert [(c.name, c.outcome) for c in checks if c.outcome != "pass"] == []
    assert len(checks) == 7


async def test_an_empty_key_set_fails_naming_the_legacy_secret(
    settings: Settings, supabase: Supabase
) -> None:
    supabase.keys = []
    check = by_name(await run_checks(settings, database_url=None))["auth"]
    assert check.outcome == "fail"
    assert check.fix is not None
    assert "SUPABASE_JWT_SECRET" in check.fix


async def test_legacy_secret_mode_passes_without_jwks(settings: Settings) -> None:
    legacy = settings.model_copy(
        update={"supabase_jwks_url": None, "supabase_jwt_secret": SecretStr("x" * 40)}
    )
    assert by_name(await run_checks(legacy, database_url=None))["auth"].outcome == "pass"


async def test_a_refused_token_fails_and_skips_the_models(
    settings: Settings, supabase: Supabase
) -> None:
    wrong = settings.model_copy(update={"replicate_api_token": SecretStr("r8_wrong")})
    checks = by_name(await run_checks(wrong, database_url=None))
    assert checks["replicate token"].outcome == "fail"
    assert checks["catalog models"].outcome == "skip"


async def test_an_unknown_model_slug_is_named(settings: Settings, supabase: Supabase) -> None:
    override = [{"model": "t2v-14B", "kind": "t2v", "resolution": "480p", "cost": 10,
                 "replicate_model": "nobody/no-such-model"}]  # fmt: skip
    odd = settings.model_copy(update={"catalog_overrides": json.dumps(override)})
    check = by_name(await run_checks(odd, database_url=None))["catalog models"]
    assert check.outcome == "fail"
    assert "nobody/no-such-model" in check.detail


@pytest.mark.parametrize(
    ("secret", "words"),
    [
        ("whsec_" + base64.b64encode(b"another-key-of-thirty-two-bytes!").decode(), "differs"),
        ("not-a-secret", "whsec_"),
        ("whsec_!!!", "whsec_"),
    ],
)
async def test_a_wrong_webhook_secret_fails(
    settings: Settings, supabase: Supabase, secret: str, words: str
) -> None:
    odd = settings.model_copy(update={"replicate_webhook_secret": SecretStr(secret)})
    check = by_name(await run_checks(odd, database_url=None))["webhook secret"]
    assert check.outcome == "fail"
    assert words in check.detail
    assert check.fix is not None
    assert "webhooks/default/secret" in check.fix


@pytest.mark.parametrize(
    ("bucket", "words"),
    [
        (None, "not found"),
        ({"id": "generations", "public": True, "file_size_limit": None}, "public"),
        ({"id": "generations", "public": False, "file_size_limit": 10 * MB}, "MAX_OUTPUT_BYTES"),
    ],
)
async def test_a_missing_public_or_small_bucket_fails(
    settings: Settings, supabase: Supabase, bucket: dict[str, Any] | None, words: str
) -> None:
    supabase.bucket = bucket
    check = by_name(await run_checks(settings, database_url=None))["storage bucket"]
    assert check.outcome == "fail"
    assert words in check.detail


async def test_an_unmigrated_database_fails_with_the_command(
    settings: Settings, supabase: Supabase, server_url: str
) -> None:
    from local.database import with_database

    name = f"wan_doctor_{uuid.uuid4().hex[:8]}"
    await create_database(server_url, name)
    try:
        check = by_name(await run_checks(settings, database_url=with_database(server_url, name)))
    finally:
        await drop_database(server_url, name)
    assert check["migrations"].outcome == "fail"
    assert check["migrations"].fix == "run `wanctl migrate`"


def test_the_command_exits_1_and_prints_each_fix(
    settings: Settings,
    supabase: Supabase,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in settings.model_dump().items():
        if value is None:
            monkeypatch.delenv(name.upper(), raising=False)
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        monkeypatch.setenv(name.upper(), value if isinstance(value, str) else json.dumps(value))
    monkeypatch.setenv("REPLICATE_WEBHOOK_SECRET", "not-a-secret")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert cli.main(["doctor"]) == 1
    printed = capsys.readouterr().out
    assert "FAIL webhook secret" in printed
    assert "fix: set REPLICATE_WEBHOOK_SECRET" in printed
    assert "PASS replicate token" in printed
    assert "SKIP migrations" in printed
