"""The local stack's secrets: generated once, kept in .local/secrets.json (git-ignored).

Kept across restarts so tokens printed yesterday still work today.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class LocalSecrets:
    jwt_secret: str
    webhook_secret: str
    replicate_api_token: str
    storage_signing_key: str
    token_ttl_s: int = 7 * 24 * 3600


def _generate() -> LocalSecrets:
    return LocalSecrets(
        jwt_secret=secrets.token_urlsafe(48),
        webhook_secret="whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
        replicate_api_token="r8_local_" + secrets.token_hex(16),
        storage_signing_key=secrets.token_urlsafe(32),
    )


def load_local_secrets(local_dir: Path) -> LocalSecrets:
    path = local_dir / "secrets.json"
    if path.exists():
        data = json.loads(path.read_text())
        known = set(LocalSecrets.__dataclass_fields__)
        return LocalSecrets(**{k: v for k, v in data.items() if k in known})
    fresh = _generate()
    local_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(fresh), indent=2))
    path.chmod(0o600)
    return fresh
