"""Access tokens for the local stack, tests and benchmarks: HS256, shaped like Supabase's.

Never deployed: production tokens come from Supabase Auth.
"""

from __future__ import annotations

import time
import uuid

import jwt

from shared.web.auth import USER_ROLE


def mint_token(
    secret: str,
    user_id: uuid.UUID | str,
    *,
    email: str | None = None,
    ttl_s: int = 3600,
    issuer: str | None = None,
    now: float | None = None,
    app_role: str | None = None,
) -> str:
    """An HS256 token shaped like a Supabase user access token (local stack and tests only)."""
    issued_at = int(time.time() if now is None else now)
    claims: dict[str, object] = {
        "sub": str(user_id),
        "email": email or "",
        "aud": USER_ROLE,
        "role": USER_ROLE,
        "iat": issued_at,
        "exp": issued_at + ttl_s,
        "aal": "aal1",
        "is_anonymous": False,
        "app_metadata": {
            "provider": "email",
            "providers": ["email"],
            **({"role": app_role} if app_role else {}),
        },
        "user_metadata": {},
        "session_id": str(uuid.uuid4()),
    }
    if issuer is not None:
        claims["iss"] = issuer
    return jwt.encode(claims, secret, algorithm="HS256")
