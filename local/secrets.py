"""The local stack's secrets: generated once, kept in .local/secrets.json (git-ignored).

Kept across restarts so tokens printed yesterday still work today.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import asdict, dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class LocalSecrets:
    jwt_secret: str
    webhook_secret: str
    replicate_api_token: str
    storage_signing_key: str
    token_ttl_s: int = 7 * 24 * 3600
    # The Stripe emulator's API key and webhook signing secret (Stripe's formats).
    stripe_secret_key: str = ""
    stripe_webhook_secret: str = ""


def _generate() -> LocalSecrets:
    return LocalSecrets(
        jwt_secret=secrets.token_urlsafe(48),
        webhook_secret="whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
        replicate_api_token="r8_local_" + secrets.token_hex(16),
        storage_signing_key=secrets.token_urlsafe(32),
        stripe_secret_key=_stripe_key(),
        stripe_webhook_secret=_stripe_webhook_secret(),
    )


def _stripe_key() -> str:
    return "sk_test_local_" + secrets.token_hex(16)


def _stripe_webhook_secret() -> str:
    return "whsec_" + secrets.token_hex(24)


def load_local_secrets(local_dir: Path) -> LocalSecrets:
    path = local_dir / "secrets.json"
    if path.exists():
        data = json.loads(path.read_text())
        known = set(LocalSecrets.__dataclass_fields__)
        loaded = LocalSecrets(**{k: v for k, v in data.items() if k in known})
        if loaded.stripe_secret_key and loaded.stripe_webhook_secret:
            return loaded
        # A file from before payments: add the Stripe secrets, keep everything else.
        loaded = replace(
            loaded, stripe_secret_key=_stripe_key(), stripe_webhook_secret=_stripe_webhook_secret()
        )
        path.write_text(json.dumps(asdict(loaded), indent=2))
        return loaded
    fresh = _generate()
    local_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(fresh), indent=2))
    path.chmod(0o600)
    return fresh
