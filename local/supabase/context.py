"""What every service of the Supabase emulator shares: its configuration, the project's keys,
the database pool and the fault knobs.

Routers (rest.py, auth.py, storage.py) each expose `router(ctx: EmulatorContext) -> APIRouter`
and are listed in `local.supabase.app.SERVICES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import jwt
from pydantic import BaseModel, ConfigDict, Field

from local.supabase.faults import FaultState, SupabaseFaults

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

JWKS_PATH = "/auth/v1/.well-known/jwks.json"


class SupabaseEmulatorConfig(BaseModel):
    """Everything the emulator needs at start. Secrets have no defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    database_url: str = Field(min_length=1)
    """The PostgreSQL the emulated PostgREST and Auth work on (a superuser: it switches roles)."""
    jwt_secret: str = Field(min_length=32)
    """The project's legacy JWT secret (HS256): the API keys and legacy user tokens."""
    anon_key: str = Field(min_length=1)
    service_role_key: str = Field(min_length=1)
    signing_key_pem: str | None = None
    """The project's ES256 private key; None: a project still on the legacy secret only (its
    JWKS is empty, as Supabase serves it before asymmetric keys are turned on)."""
    signing_key_id: str = "local-es256"
    storage_dir: Path | None = None
    """Where emulated Storage keeps objects (local.supabase.storage); None: no Storage."""
    buckets: dict[str, Annotated[int, Field(ge=1)] | None] = {}
    """Private buckets created at start, by id: their file size limit in bytes (None: none).
    Objects already on disk under `storage_dir/<bucket>/` are served again."""
    seed: int | None = None
    faults: SupabaseFaults = SupabaseFaults()


class JwtRejected(Exception):
    """A bearer token the project would not accept; `code` is PostgREST's (PGRST301/303)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ProjectKeys:
    """The project's keys: verify any token the project itself would have signed."""

    jwt_secret: str
    signing_key: jwt.PyJWK | None
    public_jwk: Mapping[str, str] | None

    @classmethod
    def from_config(cls, config: SupabaseEmulatorConfig) -> ProjectKeys:
        if config.signing_key_pem is None:
            return cls(config.jwt_secret, None, None)
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        private = load_pem_private_key(config.signing_key_pem.encode(), password=None)
        if not isinstance(private, ec.EllipticCurvePrivateKey):
            raise ValueError("signing_key_pem must be an EC P-256 private key (ES256)")
        public = jwt.algorithms.ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
        jwk = {**public, "kid": config.signing_key_id, "alg": "ES256", "use": "sig"}
        return cls(config.jwt_secret, jwt.PyJWK(jwk), {k: str(v) for k, v in jwk.items()})

    def jwks(self) -> dict[str, list[Mapping[str, str]]]:
        return {"keys": [self.public_jwk] if self.public_jwk is not None else []}

    def verify(self, token: str) -> dict[str, object]:
        """The token's claims if the project signed it (HS256 secret or its ES256 key) and it
        has not expired; otherwise JwtRejected. The audience is not checked, as PostgREST."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise JwtRejected("PGRST301", "Expected 3 parts in JWT; got 1") from exc
        alg = header.get("alg")
        key: str | jwt.PyJWK
        if alg == "HS256":
            key = self.jwt_secret
        elif (
            alg == "ES256"
            and self.signing_key is not None
            and header.get("kid") == self.signing_key.key_id
        ):
            key = self.signing_key
        else:
            raise JwtRejected("PGRST301", "No suitable key or wrong key type")
        try:
            claims: dict[str, object] = jwt.decode(
                token, key, algorithms=[str(alg)], options={"verify_aud": False}
            )
        except jwt.ExpiredSignatureError as exc:
            raise JwtRejected("PGRST303", "JWT expired") from exc
        except jwt.PyJWTError as exc:
            raise JwtRejected("PGRST301", "JWSError JWSInvalidSignature") from exc
        return claims


@dataclass
class EmulatorContext:
    config: SupabaseEmulatorConfig
    keys: ProjectKeys
    faults: FaultState
    pool: AsyncConnectionPool | None = None
    """Opened by the app's lifespan (None before start)."""

    def db(self) -> AsyncConnectionPool:
        assert self.pool is not None, "the emulator's lifespan has not started"
        return self.pool


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive)."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None
