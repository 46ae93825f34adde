"""Supabase access token -> `CurrentUser`.

Two modes, chosen once from settings, each with a fixed set of algorithms so a token can never
pick how it is verified (no `alg: none`, no HS256-signed-with-the-public-key confusion):

- JWKS (`SUPABASE_JWKS_URL` set): ES256/RS256, keys fetched with httpx (async, with a timeout),
  cached for 10 minutes and refetched at most once per token on an unknown `kid`. A JWKS URL wins
  over a secret: projects on asymmetric signing keys should not also accept the legacy secret.
- HS256 (otherwise): the project's legacy JWT secret; verification is CPU-only and runs inline.

Every failure is an `AuthenticationError` (401) with a short detail, except a JWKS that cannot be
fetched or used: that is not the caller's fault, so it is `AuthUnavailable` (503) and the frontend
does not sign the user out over our outage.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jwt

from shared.core.config import Settings
from shared.core.errors import AuthenticationError, AuthUnavailable, ConfigurationError

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

JWKS_ALGORITHMS = ("ES256", "RS256")
USER_ROLE = "authenticated"
JWKS_TTL_S = 600.0
JWKS_REFETCH_COOLDOWN_S = 30.0
JWKS_TIMEOUT_S = 5.0
VERIFIED_TOKENS_MAX = 10_000  # tokens kept verified per process (LRU)
_MIN_SECRET_BYTES = 32  # below this PyJWT warns on every verification (RFC 7518 3.2)

# Most specific first: InvalidSignatureError is a DecodeError, everything is an InvalidTokenError.
_DETAILS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "Token expired."),
    (jwt.ImmatureSignatureError, "Token is not valid yet."),
    (jwt.InvalidAudienceError, "Token has the wrong audience."),
    (jwt.InvalidIssuerError, "Token has the wrong issuer."),
    (jwt.InvalidAlgorithmError, "Token algorithm is not allowed."),
    (jwt.InvalidSignatureError, "Token signature is invalid."),
    (jwt.DecodeError, "Malformed token."),
)


@dataclass(frozen=True, slots=True)
class CurrentUser:
    """The verified caller. `email` is None for users without one (phone sign-ups)."""

    id: uuid.UUID
    email: str | None
    role: str
    # app_metadata.role: set only by the operator (service role), never by the user; "admin"
    # opens the operator's endpoints. (user_metadata is the user's to edit, so never that.)
    app_role: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.app_role == "admin"


class _NoSigningKeys(jwt.PyJWKSetError):
    """The JWKS answered, but with no key we can verify with (a legacy-secret project)."""


class _JwksCache:
    """The project's public signing keys by `kid`, fetched lazily and kept for JWKS_TTL_S.

    Lock-free on purpose (an asyncio.Lock binds to one event loop): while a refresh is in
    flight, other requests keep using the stale keys; only a cold start may fetch concurrently.
    """

    def __init__(
        self, url: str, transport: httpx.AsyncBaseTransport | None, clock: Callable[[], float]
    ) -> None:
        self._url = url
        self._transport = transport
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._refreshing = False

    async def key_for(self, kid: str) -> jwt.PyJWK | None:
        """The key for `kid`, or None if the (possibly just refetched) key set lacks it."""
        age = self._clock() - self._fetched_at
        if age >= JWKS_TTL_S:
            if not (self._keys and self._refreshing):
                await self._refresh()
        # Keys rotate: an unknown kid earns one refetch, but at most every cooldown, so tokens
        # with made-up kids cannot turn every request into a fetch.
        elif kid not in self._keys and age >= JWKS_REFETCH_COOLDOWN_S and not self._refreshing:
            await self._refresh()
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        # Only JWKS mode needs an HTTP client: HS256 starts without importing httpx.
        import httpx

        from shared.core.http import async_client

        self._refreshing = True
        try:
            async with async_client(transport=self._transport, timeout=JWKS_TIMEOUT_S) as client:
                response = await client.get(self._url)
                response.raise_for_status()
                document = response.json()
            if not isinstance(document, dict):
                raise jwt.PyJWKSetError("The JWKS document is not a JSON object")
            if document.get("keys") == []:
                raise _NoSigningKeys("the key set is empty")
            keys = {
                key.key_id: key
                for key in jwt.PyJWKSet.from_dict(document)
                if key.key_id
                and key.algorithm_name in JWKS_ALGORITHMS
                and key.public_key_use in (None, "sig")
            }
            if not keys:
                raise _NoSigningKeys(f"no usable {'/'.join(JWKS_ALGORITHMS)} signing keys")
        # ValueError: the body is not JSON. PyJWKSetError also covers a project still on the
        # legacy secret, whose JWKS is empty: configure the secret instead of the URL.
        except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as exc:
            log.warning("JWKS fetch from %s failed: %s", self._url, exc)
            raise AuthUnavailable() from exc
        finally:
            self._refreshing = False
        self._keys = keys
        self._fetched_at = self._clock()

    async def check_at_start(self) -> None:
        """Fetch the keys now. A key set without usable keys is a configuration error (the
        project still signs with its legacy secret: every token would fail); an unreachable
        JWKS is only logged, and fetched again for the first token."""
        try:
            await self._refresh()
        except AuthUnavailable as exc:
            if isinstance(exc.__cause__, _NoSigningKeys):
                raise ConfigurationError(
                    f"SUPABASE_JWKS_URL ({self._url}) serves no "
                    f"{'/'.join(JWKS_ALGORITHMS)} signing keys ({exc.__cause__}): the project "
                    "still signs tokens with its legacy JWT secret. Set SUPABASE_JWT_SECRET "
                    "and unset SUPABASE_JWKS_URL (or turn on asymmetric signing keys)."
                ) from exc
            log.warning("JWKS not reachable at start; it is fetched again for the first token")


class Authenticator:
    """Verifies `Authorization: Bearer <Supabase access token>` headers; see the module doc."""

    def __init__(
        self,
        *,
        audience: str,
        issuer: str | None,
        leeway_s: int,
        secret: str | None = None,
        jwks: _JwksCache | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if (secret is None) == (jwks is None):
            raise ConfigurationError("auth needs exactly one of a JWT secret or a JWKS URL")
        self._keys: str | _JwksCache
        if jwks is not None:
            self._keys = jwks
        elif secret is not None and len(secret.encode()) >= _MIN_SECRET_BYTES:
            self._keys = secret
        else:
            raise ConfigurationError("SUPABASE_JWT_SECRET must be at least 32 bytes")
        self._audience = audience
        self._issuer = issuer
        self._leeway_s = leeway_s
        self._wall_clock = wall_clock
        # Every open tab polls with the same token: a token verified once is not verified again
        # until it expires (verifying costs ~0.8 ms of CPU with PyJWT, most of a status read).
        # Only successes are kept; the key is the whole token, so nothing else can match it.
        self._verified: OrderedDict[str, tuple[CurrentUser, float]] = OrderedDict()
        self._warned_mode = False

    async def start(self) -> None:
        """Checks that need the network, run once when the service starts (see
        `_JwksCache.check_at_start`); nothing to do in HS256 mode."""
        if isinstance(self._keys, _JwksCache):
            await self._keys.check_at_start()

    def _check_mode(self, token: str) -> None:
        """A token made for the other auth mode (HS256 vs. asymmetric keys) is refused with a
        detail that says so, and the operator is told once how to fix the configuration."""
        alg = jwt.get_unverified_header(token).get("alg")
        jwks_mode = isinstance(self._keys, _JwksCache)
        if jwks_mode and alg == "HS256":
            detail = (
                "Token is signed with HS256, but this service verifies asymmetric "
                f"({'/'.join(JWKS_ALGORITHMS)}) tokens through JWKS."
            )
            fix = (
                "if the Supabase project still uses its legacy JWT secret, set "
                "SUPABASE_JWT_SECRET and unset SUPABASE_JWKS_URL"
            )
        elif not jwks_mode and alg in JWKS_ALGORITHMS:
            detail = (
                f"Token is signed with {alg}, but this service verifies HS256 tokens with the "
                "project's JWT secret."
            )
            fix = "the Supabase project signs with asymmetric keys: set SUPABASE_JWKS_URL"
        else:
            return
        if not self._warned_mode:
            self._warned_mode = True
            log.warning("auth mode mismatch: %s (%s)", detail, fix)
        raise AuthenticationError(detail)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> Authenticator:
        """JWKS mode if `supabase_jwks_url` is set, else HS256 with `supabase_jwt_secret`.

        Raises ConfigurationError when neither is set. `transport` and `clock` are for tests.
        """
        settings.require_auth()
        jwks: _JwksCache | None = None
        secret: str | None = None
        if settings.supabase_jwks_url is not None:
            jwks = _JwksCache(settings.supabase_jwks_url, transport, clock)
        elif settings.supabase_jwt_secret is not None:
            secret = settings.supabase_jwt_secret.get_secret_value()
        return cls(
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway_s=settings.jwt_leeway_s,
            secret=secret,
            jwks=jwks,
        )

    async def authenticate(self, authorization_header: str | None) -> CurrentUser:
        """The user behind the header's bearer token.

        Raises AuthenticationError for any missing, malformed, forged, expired or non-user token,
        and AuthUnavailable (JWKS mode) when the signing keys cannot be fetched. Nothing else.
        """
        if not authorization_header:
            raise AuthenticationError("Missing bearer token.")
        parts = authorization_header.split()
        if len(parts) != 2 or parts[0].lower() != "bearer":
            raise AuthenticationError("Expected 'Authorization: Bearer <token>'.")
        token = parts[1]
        cached = self._verified.get(token)
        if cached is not None:
            user, expires_at = cached
            if self._wall_clock() <= expires_at + self._leeway_s:
                self._verified.move_to_end(token)
                return user
            del self._verified[token]
            raise AuthenticationError("Token expired.")
        return await self._verify(token)

    async def _verify(self, token: str) -> CurrentUser:
        try:
            self._check_mode(token)
            key = self._keys if isinstance(self._keys, str) else await _jwks_key(self._keys, token)
            claims: dict[str, object] = jwt.decode(
                token,
                key,
                # A PyJWK verifies only with its own algorithm, whatever the header claims.
                algorithms=[key.algorithm_name] if isinstance(key, jwt.PyJWK) else ["HS256"],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway_s,
                options={"require": ["exp", "sub"]},
            )
        except jwt.MissingRequiredClaimError as exc:
            raise AuthenticationError(f"Token is missing the '{exc.claim}' claim.") from exc
        except jwt.PyJWTError as exc:
            detail = next((d for t, d in _DETAILS if isinstance(exc, t)), "Invalid token.")
            raise AuthenticationError(detail) from exc
        user = _user_from(claims)
        expires_at = claims["exp"]  # required, and checked to be a number by jwt.decode
        if isinstance(expires_at, int | float):
            self._verified[token] = (user, float(expires_at))
            if len(self._verified) > VERIFIED_TOKENS_MAX:
                self._verified.popitem(last=False)
        return user


async def _jwks_key(jwks: _JwksCache, token: str) -> jwt.PyJWK:
    header = jwt.get_unverified_header(token)
    # Checked before any fetch, so a token cannot make us call the JWKS for nothing.
    if header.get("alg") not in JWKS_ALGORITHMS:
        raise AuthenticationError("Token algorithm is not allowed.")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise AuthenticationError("Token has no key id.")
    key = await jwks.key_for(kid)
    if key is None:
        raise AuthenticationError("Token signing key is unknown.")
    return key


def _user_from(claims: Mapping[str, object]) -> CurrentUser:
    # The anon key and the service_role key are valid project JWTs too, but they are not users.
    if claims.get("role") != USER_ROLE:
        raise AuthenticationError("Token is not a user access token.")
    try:
        user_id = uuid.UUID(str(claims["sub"]))
    except ValueError as exc:
        raise AuthenticationError("Token subject is not a user id.") from exc
    email = claims.get("email")
    app_metadata = claims.get("app_metadata")
    app_role = app_metadata.get("role") if isinstance(app_metadata, dict) else None
    # Supabase sends "" for users who signed up without an email.
    return CurrentUser(
        id=user_id,
        email=email if isinstance(email, str) and email else None,
        role=USER_ROLE,
        app_role=app_role if isinstance(app_role, str) else None,
    )
