"""The two configurations of the local stack and what each needs from the local project.

Production's ("supabase", the default of `wanctl dev`): RPC through the Supabase emulator's
PostgREST with the service-role key, files in its Storage (a private bucket whose size limit is
MAX_OUTPUT_BYTES, videos served by its signed links), user tokens ES256 verified through its
JWKS. The direct one ("direct", `--direct` or WAN_DEV_MODE=direct): psycopg to the database, the
local folder served by the API, HS256 tokens signed with the legacy secret. Both use the same
database, secrets and Replicate emulator.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from local.secrets import LocalSecrets
from local.supabase.context import JWKS_PATH, SupabaseEmulatorConfig
from shared.core.config import Settings

# The production configuration (PostgREST RPC, ES256 tokens through JWKS, all against the
# Supabase emulator) is the default; "direct" keeps psycopg and HS256 (WAN_DEV_MODE=direct).
DevMode = Literal["supabase", "direct"]


# The bucket and its size limit when the settings do not say (production's defaults).
_DEFAULT_BUCKET: str = Settings.model_fields["storage_bucket"].default
_DEFAULT_FILE_SIZE_LIMIT: int = Settings.model_fields["max_output_bytes"].default


def storage_buckets(settings: Settings | None = None) -> dict[str, int]:
    """The private bucket the service stores in, with MAX_OUTPUT_BYTES as its file size limit
    (as production's bucket is set up); production's defaults without settings."""
    if settings is None:
        return {_DEFAULT_BUCKET: _DEFAULT_FILE_SIZE_LIMIT}
    return {settings.storage_bucket: settings.max_output_bytes}


def supabase_emulator_config(
    secrets: LocalSecrets, database_url: str, storage_dir: Path, **overrides: object
) -> SupabaseEmulatorConfig:
    """The Supabase emulator of the local project: its keys are the local secrets; its Storage
    keeps files under `storage_dir` and starts with `storage_buckets()` (override `buckets`)."""
    values: dict[str, object] = {
        "database_url": database_url,
        "jwt_secret": secrets.jwt_secret,
        "anon_key": secrets.anon_key,
        "service_role_key": secrets.service_role_key,
        "signing_key_pem": secrets.jwt_signing_key,
        "signing_key_id": secrets.jwt_key_id,
        "storage_dir": storage_dir,
        "buckets": storage_buckets(),
    }
    values.update(overrides)
    return SupabaseEmulatorConfig.model_validate(values)


def mint_local_token(
    secrets: LocalSecrets,
    user_id: uuid.UUID | str,
    mode: DevMode,
    *,
    email: str | None = None,
    ttl_s: int | None = None,
    app_role: str | None = None,
) -> str:
    """A user access token the local API accepts in `mode`: ES256 with the project's signing
    key (verified through the emulator's JWKS), or HS256 with the legacy secret (direct)."""
    from local.tokens import mint_token

    ttl = secrets.token_ttl_s if ttl_s is None else ttl_s
    if mode == "direct":
        return mint_token(secrets.jwt_secret, user_id, email=email, ttl_s=ttl, app_role=app_role)
    return mint_token(
        secrets.jwt_signing_key,
        user_id,
        email=email,
        ttl_s=ttl,
        app_role=app_role,
        algorithm="ES256",
        kid=secrets.jwt_key_id,
    )


def supabase_overrides(secrets: LocalSecrets, supabase_url: str) -> dict[str, object]:
    """What turns `local_settings` into production's shape against the Supabase emulator:
    RPC through PostgREST and files in its Storage with the service-role key, tokens verified
    through the JWKS only (no legacy secret)."""
    return {
        "rpc_transport": "supabase",
        "storage_backend": "supabase",
        "supabase_url": supabase_url,
        "supabase_service_role_key": SecretStr(secrets.service_role_key),
        "supabase_jwks_url": supabase_url + JWKS_PATH,
        "supabase_jwt_secret": None,
    }
