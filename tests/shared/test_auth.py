"""Bearer tokens -> CurrentUser, in both modes; JWKS served through httpx.MockTransport."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from local.tokens import mint_token
from shared.core.config import Settings
from shared.core.errors import AuthenticationError, AuthUnavailable, ConfigurationError
from shared.web.auth import (
    JWKS_REFETCH_COOLDOWN_S,
    JWKS_TTL_S,
    Authenticator,
    CurrentUser,
)
from tests.support import Clock

SECRET = "local-test-jwt-secret-with-at-least-32-bytes"
JWKS_URL = "https://project.supabase.co/auth/v1/.well-known/jwks.json"
ISSUER = "https://project.supabase.co/auth/v1"
USER_ID = uuid.UUID("5b0f0f9e-2d43-4a39-9a53-2f3c1c0e7a11")
EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


# --- builders -----------------------------------------------------------------------------


def hs256_auth(**overrides: str | int | None) -> Authenticator:
    values: dict[str, str | int | None] = {"supabase_jwt_secret": SECRET, **overrides}
    return Authenticator.from_settings(Settings(environment="test", **values))


def bearer(token: str) -> str:
    return f"Bearer {token}"


def user_claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": str(USER_ID),
        "email": "ada@example.com",
        "aud": "authenticated",
        "role": "authenticated",
        "iat": now,
        "exp": now + 3600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header: dict[str, object], claims: dict[str, object], hmac_key: bytes | None) -> str:
    """A compact JWT built by hand, for tokens PyJWT refuses to sign (alg none, PEM as secret)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    if hmac_key is None:
        return signing_input + "."
    mac = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def jwk(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, kid: str, alg: str) -> dict[str, str]:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        public = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    else:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**public, "kid": kid, "alg": alg, "use": "sig"}


def es256(
    claims: dict[str, object], kid: str = "ec-1", key: ec.EllipticCurvePrivateKey = EC_KEY
) -> str:
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid})


class FakeJwks:
    """The JWKS endpoint: serves `document`, counts fetches, or runs `fail` instead."""

    def __init__(self, document: object) -> None:
        self.document = document
        self.fetches = 0
        self.fail: Callable[[httpx.Request], httpx.Response] | None = None
        self.gate: asyncio.Event | None = None  # when set, fetches wait for it...
        self.waiting = asyncio.Event()  # ...and announce that they do

    async def handle(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url) == JWKS_URL
        self.fetches += 1
        if self.gate is not None:
            self.waiting.set()
            await self.gate.wait()
        if self.fail is not None:
            return self.fail(request)
        return httpx.Response(200, json=self.document)


def jwks_auth(server: FakeJwks, clock: Clock | None = None, **overrides: str) -> Authenticator:
    values = {"supabase_jwks_url": JWKS_URL, **overrides}
    return Authenticator.from_settings(
        Settings(environment="test", **values),
        transport=httpx.MockTransport(server.handle),
        clock=clock or Clock(),
    )


def ec_server() -> FakeJwks:
    return FakeJwks({"keys": [jwk(EC_KEY, "ec-1", "ES256")]})


async def keys_fetched_once() -> tuple[FakeJwks, Clock, Authenticator]:
    """A JWKS authenticator on a fake clock that has fetched the keys once (for one user)."""
    server, clock = ec_server(), Clock()
    auth = jwks_auth(server, clock)
    await auth.authenticate(bearer(es256(user_claims())))
    return server, clock, auth


async def rejection(auth: Authenticator, header: str | None) -> str:
    with pytest.raises(AuthenticationError) as caught:
        await auth.authenticate(header)
    assert type(caught.value) is AuthenticationError
    return caught.value.detail


# --- HS256 mode ---------------------------------------------------------------------------


async def test_valid_token_gives_current_user() -> None:
    token = mint_token(SECRET, USER_ID, email="ada@example.com")
    user = await hs256_auth().authenticate(bearer(token))
    assert user == CurrentUser(id=USER_ID, email="ada@example.com", role="authenticated")


async def test_bearer_scheme_is_case_insensitive() -> None:
    user = await hs256_auth().authenticate("bEaReR " + mint_token(SECRET, USER_ID))
    assert user.id == USER_ID


@pytest.mark.parametrize("header", [None, ""])
async def test_missing_header_is_rejected(header: str | None) -> None:
    assert await rejection(hs256_auth(), header) == "Missing bearer token."


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer a b", "Token x.y.z"])
async def test_wrong_scheme_or_token_count_is_rejected(header: str) -> None:
    assert "Bearer" in await rejection(hs256_auth(), header)


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "e30", "ä.ö.ü"])
async def test_malformed_token_is_rejected(token: str) -> None:
    assert await rejection(hs256_auth(), bearer(token)) == "Malformed token."


async def test_expired_token_is_rejected() -> None:
    token = mint_token(SECRET, USER_ID, ttl_s=60, now=time.time() - 3600)
    assert await rejection(hs256_auth(), bearer(token)) == "Token expired."


async def test_token_just_expired_is_accepted_within_leeway() -> None:
    token = mint_token(SECRET, USER_ID, ttl_s=60, now=time.time() - 70)
    assert (await hs256_auth(jwt_leeway_s=30).authenticate(bearer(token))).id == USER_ID


async def test_forged_signature_is_rejected() -> None:
    token = mint_token("another-projects-secret-also-32-bytes-long", USER_ID)
    assert await rejection(hs256_auth(), bearer(token)) == "Token signature is invalid."


async def test_alg_none_is_rejected() -> None:
    token = handmade({"alg": "none", "typ": "JWT"}, user_claims(), hmac_key=None)
    assert await rejection(hs256_auth(), bearer(token)) == "Token algorithm is not allowed."


async def test_es256_token_rejected_in_hs256_mode() -> None:
    detail = await rejection(hs256_auth(), bearer(es256(user_claims())))
    assert detail.startswith("Token is signed with ES256, but this service verifies HS256")


async def test_wrong_audience_is_rejected() -> None:
    token = jwt.encode(user_claims(aud="somebody-else"), SECRET, algorithm="HS256")
    assert await rejection(hs256_auth(), bearer(token)) == "Token has the wrong audience."


async def test_wrong_issuer_is_rejected() -> None:
    token = mint_token(SECRET, USER_ID, issuer="https://evil.example/auth/v1")
    detail = await rejection(hs256_auth(jwt_issuer=ISSUER), bearer(token))
    assert detail == "Token has the wrong issuer."


async def test_configured_issuer_is_accepted() -> None:
    token = mint_token(SECRET, USER_ID, issuer=ISSUER)
    assert (await hs256_auth(jwt_issuer=ISSUER).authenticate(bearer(token))).id == USER_ID


@pytest.mark.parametrize("claim", ["exp", "sub", "aud"])
async def test_token_missing_a_required_claim_is_rejected(claim: str) -> None:
    token = jwt.encode(user_claims(**{claim: None}), SECRET, algorithm="HS256")
    assert await rejection(hs256_auth(), bearer(token)) == f"Token is missing the '{claim}' claim."


async def test_non_uuid_subject_is_rejected() -> None:
    token = jwt.encode(user_claims(sub="ada"), SECRET, algorithm="HS256")
    assert await rejection(hs256_auth(), bearer(token)) == "Token subject is not a user id."


@pytest.mark.parametrize("role", ["anon", "service_role", None])
async def test_non_user_role_is_rejected(role: str | None) -> None:
    token = jwt.encode(user_claims(role=role), SECRET, algorithm="HS256")
    assert await rejection(hs256_auth(), bearer(token)) == "Token is not a user access token."


@pytest.mark.parametrize("role", ["anon", "service_role"])
async def test_service_role_key_is_not_a_user(role: str) -> None:
    # The shape of the project's API keys: signed with the same secret, but no sub and no aud.
    now = int(time.time())
    key = {"iss": "supabase", "ref": "project", "role": role, "iat": now, "exp": now + 10**8}
    await rejection(hs256_auth(), bearer(jwt.encode(key, SECRET, algorithm="HS256")))


async def test_empty_email_becomes_none() -> None:
    user = await hs256_auth().authenticate(bearer(mint_token(SECRET, USER_ID)))
    assert user.email is None


def test_minted_token_is_shaped_like_a_supabase_access_token() -> None:
    token = mint_token(SECRET, USER_ID, email="ada@example.com", ttl_s=60, issuer=ISSUER, now=1e9)
    claims = jwt.decode(
        token, SECRET, algorithms=["HS256"], audience="authenticated", options={"verify_exp": False}
    )
    assert claims["sub"] == str(USER_ID)
    assert (claims["iat"], claims["exp"], claims["iss"]) == (10**9, 10**9 + 60, ISSUER)
    assert claims["role"] == "authenticated"
    assert claims["app_metadata"]["provider"] == "email"
    assert claims["user_metadata"] == {}
    uuid.UUID(claims["session_id"])


def test_short_secret_is_refused_at_start() -> None:
    with pytest.raises(ConfigurationError, match="32 bytes"):
        hs256_auth(supabase_jwt_secret="too-short")


def test_missing_secret_and_jwks_url_are_refused_at_start() -> None:
    with pytest.raises(ConfigurationError, match="SUPABASE_JWT_SECRET"):
        Authenticator.from_settings(Settings(environment="test"))


@given(st.text(max_size=200))
@settings(max_examples=150, deadline=None)
def test_any_header_gives_a_user_or_an_authentication_error(header: str) -> None:
    with contextlib.suppress(AuthenticationError):
        asyncio.run(hs256_auth().authenticate(header))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=5,
)
claim_names = st.sampled_from(["sub", "aud", "role", "exp", "iat", "nbf", "iss", "email", "jti"])


@given(st.dictionaries(claim_names, json_values))
@settings(max_examples=200, deadline=None)
def test_any_signed_claims_give_a_user_or_an_authentication_error(
    overrides: dict[str, object],
) -> None:
    # By hand: PyJWT refuses to sign some of these (a non-string iss), but a forger would not.
    token = handmade({"alg": "HS256", "typ": "JWT"}, user_claims(**overrides), SECRET.encode())
    with contextlib.suppress(AuthenticationError):
        asyncio.run(hs256_auth(jwt_issuer=ISSUER).authenticate(bearer(token)))


# --- JWKS mode ----------------------------------------------------------------------------


async def test_es256_token_via_jwks_is_accepted() -> None:
    user = await jwks_auth(ec_server()).authenticate(bearer(es256(user_claims())))
    assert user == CurrentUser(id=USER_ID, email="ada@example.com", role="authenticated")


async def test_rs256_token_via_jwks_is_accepted() -> None:
    server = FakeJwks({"keys": [jwk(EC_KEY, "ec-1", "ES256"), jwk(RSA_KEY, "rsa-1", "RS256")]})
    token = jwt.encode(user_claims(), RSA_KEY, algorithm="RS256", headers={"kid": "rsa-1"})
    assert (await jwks_auth(server).authenticate(bearer(token))).id == USER_ID


async def test_hs256_token_rejected_in_jwks_mode() -> None:
    # Algorithm confusion: HMAC "signed" with the published public key as the secret.
    server = ec_server()
    pem = EC_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = handmade({"alg": "HS256", "typ": "JWT", "kid": "ec-1"}, user_claims(), pem)
    detail = await rejection(jwks_auth(server), bearer(token))
    assert detail.startswith("Token is signed with HS256, but this service verifies asymmetric")
    assert server.fetches == 0


async def test_secret_signed_token_rejected_when_jwks_url_is_also_set() -> None:
    auth = jwks_auth(ec_server(), supabase_jwt_secret=SECRET)
    token = jwt.encode(user_claims(), SECRET, algorithm="HS256", headers={"kid": "ec-1"})
    assert (await rejection(auth, bearer(token))).startswith("Token is signed with HS256")


async def test_header_alg_must_match_the_keys_algorithm() -> None:
    token = jwt.encode(user_claims(), RSA_KEY, algorithm="RS256", headers={"kid": "ec-1"})
    assert (
        await rejection(jwks_auth(ec_server()), bearer(token)) == "Token algorithm is not allowed."
    )


async def test_token_signed_by_another_key_with_a_known_kid_is_rejected() -> None:
    token = es256(user_claims(), key=ec.generate_private_key(ec.SECP256R1()))
    detail = await rejection(jwks_auth(ec_server()), bearer(token))
    assert detail == "Token signature is invalid."


async def test_token_without_kid_is_rejected() -> None:
    token = jwt.encode(user_claims(), EC_KEY, algorithm="ES256")
    assert await rejection(jwks_auth(ec_server()), bearer(token)) == "Token has no key id."


async def test_expired_token_via_jwks_is_rejected() -> None:
    token = es256(user_claims(exp=int(time.time()) - 3600))
    assert await rejection(jwks_auth(ec_server()), bearer(token)) == "Token expired."


async def test_keys_are_fetched_once_and_cached() -> None:
    server, clock = ec_server(), Clock()
    auth = jwks_auth(server, clock)
    for _ in range(3):
        await auth.authenticate(bearer(es256(user_claims())))
        clock.now += JWKS_TTL_S / 4
    assert server.fetches == 1


async def test_keys_are_refetched_after_the_ttl() -> None:
    server, clock, auth = await keys_fetched_once()
    clock.now += JWKS_TTL_S
    await auth.authenticate(bearer(es256(user_claims())))
    assert server.fetches == 2


async def test_unknown_kid_triggers_exactly_one_refetch() -> None:
    server, clock, auth = await keys_fetched_once()
    rotated = ec.generate_private_key(ec.SECP256R1())
    server.document = {"keys": [jwk(EC_KEY, "ec-1", "ES256"), jwk(rotated, "ec-2", "ES256")]}
    clock.now += JWKS_REFETCH_COOLDOWN_S

    user = await auth.authenticate(bearer(es256(user_claims(), kid="ec-2", key=rotated)))

    assert user.id == USER_ID
    assert server.fetches == 2


async def test_never_published_kid_is_rejected_after_one_refetch() -> None:
    server, clock, auth = await keys_fetched_once()
    clock.now += JWKS_REFETCH_COOLDOWN_S

    detail = await rejection(auth, bearer(es256(user_claims(), kid="made-up")))

    assert detail == "Token signing key is unknown."
    assert server.fetches == 2


async def test_unknown_kids_do_not_refetch_within_the_cooldown() -> None:
    server, _, auth = await keys_fetched_once()
    for kid in ("made-up-1", "made-up-2", "made-up-3"):
        await rejection(auth, bearer(es256(user_claims(), kid=kid)))
    assert server.fetches == 1


def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def time_out(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


@pytest.mark.parametrize(
    "fail",
    [
        refuse,
        time_out,
        lambda _: httpx.Response(500, text="oops"),
        lambda _: httpx.Response(200, text="<html>not json</html>"),
        lambda _: httpx.Response(200, json=["not", "an", "object"]),
        lambda _: httpx.Response(200, json={"keys": []}),
        lambda _: httpx.Response(200, json={"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "x"}]}),
    ],
    ids=["refused", "timeout", "500", "not-json", "not-object", "no-keys", "only-hmac-keys"],
)
async def test_jwks_fetch_failure_gives_a_clean_domain_error(
    fail: Callable[[httpx.Request], httpx.Response],
) -> None:
    server = ec_server()
    server.fail = fail
    with pytest.raises(AuthUnavailable) as caught:
        await jwks_auth(server).authenticate(bearer(es256(user_claims())))
    assert (caught.value.status, caught.value.code) == (503, "auth_unavailable")
    assert caught.value.__cause__ is not None


async def test_jwks_fetch_recovers_after_a_failure() -> None:
    server = ec_server()
    server.fail = refuse
    auth = jwks_auth(server)
    with pytest.raises(AuthUnavailable):
        await auth.authenticate(bearer(es256(user_claims())))
    server.fail = None
    assert (await auth.authenticate(bearer(es256(user_claims())))).id == USER_ID


async def test_stale_keys_serve_other_requests_while_one_refresh_is_in_flight() -> None:
    server, clock, auth = await keys_fetched_once()
    clock.now += JWKS_TTL_S
    server.gate = asyncio.Event()

    refreshing = asyncio.create_task(auth.authenticate(bearer(es256(user_claims()))))
    await server.waiting.wait()
    # Bounded: a second fetch would wait on the gate forever instead of failing the test.
    try:
        other = await asyncio.wait_for(auth.authenticate(bearer(es256(user_claims()))), 1)
    finally:
        server.gate.set()

    assert (await refreshing).id == other.id == USER_ID
    assert server.fetches == 2


async def test_a_verified_token_is_not_verified_again_until_it_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [time.time()]
    auth = Authenticator(
        audience="authenticated", issuer=None, leeway_s=30, secret=SECRET,
        wall_clock=lambda: now[0],
    )  # fmt: skip
    user = uuid.uuid4()
    token = mint_token(SECRET, user, ttl_s=60)
    assert (await auth.authenticate(bearer(token))).id == user
    decodes: list[str] = []
    real_decode = jwt.decode

    def counting_decode(*args: Any, **kwargs: Any) -> Any:
        decodes.append("decode")
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)
    assert (await auth.authenticate(bearer(token))).id == user
    assert decodes == []
    # Another token (even for the same user) is verified on its own.
    other = mint_token(SECRET, user, ttl_s=61)
    assert (await auth.authenticate(bearer(other))).id == user
    assert decodes == ["decode"]
    now[0] += 60 + 31  # past exp and the leeway
    with pytest.raises(AuthenticationError, match="expired"):
        await auth.authenticate(bearer(token))


async def test_a_refused_token_is_never_remembered() -> None:
    auth = hs256_auth()
    forged = mint_token("another-secret-that-is-long-enough-32b", uuid.uuid4())
    for _ in range(2):
        with pytest.raises(AuthenticationError, match="signature"):
            await auth.authenticate(bearer(forged))
