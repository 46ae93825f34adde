"""The local stack's secrets: generated once, kept in .local/secrets.json (git-ignored).

Kept across restarts so tokens printed yesterday still work today. A file written by an older
version gains the fields it lacks (generated, then saved), so upgrading keeps the old secrets.

Like a Supabase project, the local one has a legacy JWT secret (HS256: the anon and service-role
API keys are signed with it) and an asymmetric ES256 signing key (user access tokens, published
through the emulated Auth's JWKS).
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import asdict, dataclass, fields
from pathlib import Path

# Fixed claims make the API keys a pure function of the secret (stable across restarts).
_KEY_ISSUED_AT = 1_700_000_000
_KEY_EXPIRES_AT = 2_100_000_000


@dataclass(frozen=True)
class LocalSecrets:
    jwt_secret: str
    webhook_secret: str
    replicate_api_token: str
    storage_signing_key: str
    jwt_signing_key: str = ""
    """PEM of the project's ES256 private key (user tokens; its public half is in the JWKS)."""
    jwt_key_id: str = ""
    token_ttl_s: int = 7 * 24 * 3600
    # The Stripe emulator's API key and webhook signing secret (Stripe's formats).
    stripe_secret_key: str = ""
    stripe_webhook_secret: str = ""

    @property
    def anon_key(self) -> str:
        return api_key(self.jwt_secret, "anon")

    @property
    def service_role_key(self) -> str:
        return api_key(self.jwt_secret, "service_role")


def api_key(jwt_secret: str, role: str) -> str:
    """A Supabase legacy API key: an HS256 JWT naming only the role (no user, no audience)."""
    import jwt

    claims = {
        "iss": "supabase",
        "ref": "local",
        "role": role,
        "iat": _KEY_ISSUED_AT,
        "exp": _KEY_EXPIRES_AT,
    }
    return jwt.encode(claims, jwt_secret, algorithm="HS256")


def new_signing_key() -> tuple[str, str]:
    """A fresh ES256 private key (PEM) and a key id for it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return pem, "local-" + secrets.token_hex(8)


def _generate() -> dict[str, object]:
    pem, kid = new_signing_key()
    return {
        "jwt_secret": secrets.token_urlsafe(48),
        "webhook_secret": "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "replicate_api_token": "r8_local_" + secrets.token_hex(16),
        "storage_signing_key": secrets.token_urlsafe(32),
        "jwt_signing_key": pem,
        "jwt_key_id": kid,
        "stripe_secret_key": "sk_test_local_" + secrets.token_hex(16),
        "stripe_webhook_secret": "whsec_" + secrets.token_hex(24),
    }


def load_local_secrets(local_dir: Path) -> LocalSecrets:
    path = local_dir / "secrets.json"
    known = {f.name for f in fields(LocalSecrets)}
    data: dict[str, object] = {}
    if path.exists():
        data = {k: v for k, v in json.loads(path.read_text()).items() if k in known}
    fresh = _generate()
    missing = {k: v for k, v in fresh.items() if not data.get(k)}
    if missing.keys() & {"jwt_signing_key", "jwt_key_id"}:
        # The key and its id go together: never pair an old id with a new key.
        missing["jwt_signing_key"] = fresh["jwt_signing_key"]
        missing["jwt_key_id"] = fresh["jwt_key_id"]
    loaded = LocalSecrets(**{**data, **missing})  # type: ignore[arg-type]
    if missing or not path.exists():
        local_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(loaded), indent=2))
        path.chmod(0o600)
    return loaded
