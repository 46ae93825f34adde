"""Auth modes against the Supabase emulator's Auth: ES256 tokens through its real JWKS, a
project still on the legacy secret (empty JWKS), and tokens made for the other mode."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest

from local.configs import mint_local_token, supabase_overrides
from local.secrets import LocalSecrets
from local.stack import local_settings
from shared import wiring
from shared.core.config import Settings
from shared.core.errors import AuthenticationError, ConfigurationError
from shared.web.auth import Authenticator

JWKS = "/auth/v1/.well-known/jwks.json"


def jwks_mode(supabase_url: str) -> Authenticator:
    return Authenticator.from_settings(
        Settings(environment="test", supabase_jwks_url=supabase_url + JWKS)
    )


def hs256_mode(secrets: LocalSecrets) -> Authenticator:
    return Authenticator.from_settings(
        Settings(environment="test", supabase_jwt_secret=secrets.jwt_secret)
    )


async def test_local_es256_token_is_verified_through_the_emulators_jwks(
    supabase_url: str, local_secrets: LocalSecrets
) -> None:
    user_id = uuid.uuid4()
    auth = jwks_mode(supabase_url)
    await auth.start()
    token = mint_local_token(local_secrets, user_id, "supabase", email="ada@example.test")
    user = await auth.authenticate(f"Bearer {token}")
    assert (user.id, user.email) == (user_id, "ada@example.test")


async def test_pyjwkclient_reads_the_emulators_jwks(
    supabase_url: str, local_secrets: LocalSecrets
) -> None:
    import asyncio

    import jwt

    token = mint_local_token(local_secrets, uuid.uuid4(), "supabase")
    client = jwt.PyJWKClient(supabase_url + JWKS)
    key = await asyncio.to_thread(client.get_signing_key_from_jwt, token)
    assert key.key_id == local_secrets.jwt_key_id
    claims = jwt.decode(token, key, algorithms=["ES256"], audience="authenticated")
    assert claims["role"] == "authenticated"


@pytest.mark.parametrize("supabase_config_overrides", [{"signing_key_pem": None}])
async def test_empty_jwks_fails_at_start_naming_the_jwt_secret(
    database_url: str, supabase_url: str, local_secrets: LocalSecrets, tmp_path: Path
) -> None:
    # A project still on the legacy secret serves {"keys": []}: the service refuses to start.
    settings = local_settings(
        database_url=database_url,
        api_url="http://127.0.0.1:9",
        emulator_url="http://127.0.0.1:9",
        secrets=local_secrets,
        storage_dir=tmp_path,
        **supabase_overrides(local_secrets, supabase_url),
    )
    with pytest.raises(ConfigurationError, match="SUPABASE_JWT_SECRET"):
        async with wiring.status(settings):
            pass


async def test_hs256_token_in_jwks_mode_is_401_saying_so_and_warns_once(
    supabase_url: str, local_secrets: LocalSecrets, caplog: pytest.LogCaptureFixture
) -> None:
    auth = jwks_mode(supabase_url)
    legacy = mint_local_token(local_secrets, uuid.uuid4(), "direct")
    with caplog.at_level(logging.WARNING, logger="shared.web.auth"):
        for _ in range(3):
            with pytest.raises(AuthenticationError) as caught:
                await auth.authenticate(f"Bearer {legacy}")
            assert "signed with HS256" in caught.value.detail
            assert "JWKS" in caught.value.detail
    warnings = [r for r in caplog.records if "auth mode mismatch" in r.getMessage()]
    assert len(warnings) == 1
    assert "SUPABASE_JWT_SECRET" in warnings[0].getMessage()


async def test_es256_token_in_hs256_mode_is_401_saying_so(
    local_secrets: LocalSecrets, caplog: pytest.LogCaptureFixture
) -> None:
    token = mint_local_token(local_secrets, uuid.uuid4(), "supabase")
    with (
        caplog.at_level(logging.WARNING, logger="shared.web.auth"),
        pytest.raises(AuthenticationError) as caught,
    ):
        await hs256_mode(local_secrets).authenticate(f"Bearer {token}")
    assert caught.value.status == 401
    assert "signed with ES256" in caught.value.detail
    assert "HS256" in caught.value.detail
    assert any("SUPABASE_JWKS_URL" in r.getMessage() for r in caplog.records)
