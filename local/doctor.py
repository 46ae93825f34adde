"""`wanctl doctor`: check a deployment's settings against the real services.

Each check answers pass, fail (with the fix) or skip (with what it would need). Nothing is
written anywhere: the checks only read (a JWKS, Replicate's account, models and webhook secret,
the Storage bucket, the migration records).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, urlsplit

import httpx

from shared.core.catalog import load_catalog
from shared.core.config import Settings
from shared.core.errors import ConfigurationError

Outcome = Literal["pass", "fail", "skip"]
# Supabase's Free plan caps every stored file at 50 MB, whatever the bucket says.
FREE_PLAN_FILE_LIMIT = 50 * 1024 * 1024
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Check:
    name: str
    outcome: Outcome
    detail: str
    fix: str | None = None

    def lines(self) -> list[str]:
        head = f"{self.outcome.upper():4} {self.name}: {self.detail}"
        return [head] if self.fix is None else [head, f"     fix: {self.fix}"]


def _pass(name: str, detail: str) -> Check:
    return Check(name, "pass", detail)


def _fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, "fail", detail, fix)


def _skip(name: str, detail: str) -> Check:
    return Check(name, "skip", detail)


def _json_object(response: httpx.Response) -> dict[str, object] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def check_auth(settings: Settings, http: httpx.AsyncClient) -> Check:
    name = "auth"
    if settings.supabase_jwks_url is None:
        secret = settings.supabase_jwt_secret
        if secret is None or not secret.get_secret_value():
            return _fail(
                name,
                "neither SUPABASE_JWKS_URL nor SUPABASE_JWT_SECRET is set",
                "set SUPABASE_JWKS_URL=<SUPABASE_URL>/auth/v1/.well-known/jwks.json for a project "
                "with asymmetric signing keys, or SUPABASE_JWT_SECRET (Settings > API > JWT "
                "secret) for one still on the legacy secret",
            )
        if len(secret.get_secret_value()) < 32:
            return _fail(
                name,
                "SUPABASE_JWT_SECRET is shorter than 32 characters",
                "copy the project's JWT secret exactly (Settings > API)",
            )
        return _pass(name, "HS256 tokens verified with SUPABASE_JWT_SECRET (legacy secret)")
    url = settings.supabase_jwks_url
    try:
        response = await http.get(url)
    except httpx.HTTPError as exc:
        return _fail(name, f"JWKS {url} unreachable ({type(exc).__name__})", "check the URL")
    body = _json_object(response)
    if response.status_code != 200 or body is None:
        return _fail(
            name,
            f"JWKS {url} answered {response.status_code}, not a key set",
            "use <SUPABASE_URL>/auth/v1/.well-known/jwks.json",
        )
    keys = body.get("keys")
    usable = (
        [
            k
            for k in keys
            if isinstance(k, dict)
            and k.get("kty") in ("EC", "RSA")
            and isinstance(k.get("kid"), str)
        ]
        if isinstance(keys, list)
        else []
    )
    if not usable:
        return _fail(
            name,
            f"JWKS {url} holds no asymmetric key: the project still signs with the legacy secret",
            "unset SUPABASE_JWKS_URL and set SUPABASE_JWT_SECRET, or create an asymmetric "
            "signing key in Supabase (Settings > JWT Keys)",
        )
    algs = sorted({str(k.get("alg") or k.get("kty")) for k in usable})
    return _pass(name, f"JWKS has {len(usable)} key(s) ({', '.join(algs)})")


def _replicate_headers(settings: Settings) -> dict[str, str] | None:
    token = settings.replicate_api_token
    if token is None or not token.get_secret_value():
        return None
    return {"Authorization": f"Bearer {token.get_secret_value()}"}


async def check_replicate_token(settings: Settings, http: httpx.AsyncClient) -> Check:
    name = "replicate token"
    headers = _replicate_headers(settings)
    if headers is None:
        return _fail(
            name,
            "REPLICATE_API_TOKEN is not set",
            "create a token at replicate.com/account/api-tokens and set REPLICATE_API_TOKEN",
        )
    base = settings.replicate_base_url.rstrip("/")
    try:
        response = await http.get(f"{base}/v1/account", headers=headers)
    except httpx.HTTPError as exc:
        return _fail(name, f"{base} unreachable ({type(exc).__name__})", "check REPLICATE_BASE_URL")
    if response.status_code in (401, 403):
        return _fail(name, "Replicate refused the token", "set a valid REPLICATE_API_TOKEN")
    body = _json_object(response)
    if response.status_code != 200 or body is None:
        return _fail(name, f"GET /v1/account answered {response.status_code}", "try again later")
    return _pass(name, f"valid (account {body.get('username', '?')})")


async def check_models(settings: Settings, http: httpx.AsyncClient) -> Check:
    name = "catalog models"
    headers = _replicate_headers(settings)
    if headers is None:
        return _skip(name, "needs REPLICATE_API_TOKEN")
    try:
        catalog = load_catalog(settings.catalog_overrides)
    except ConfigurationError as exc:
        return _fail(name, exc.detail, "fix CATALOG_OVERRIDES")
    base = settings.replicate_base_url.rstrip("/")
    slugs = sorted({o.replicate_model for o in catalog.offerings.values()})
    missing: list[str] = []
    for slug in slugs:
        owner, _, model = slug.partition("/")
        try:
            response = await http.get(
                f"{base}/v1/models/{quote(owner, safe='')}/{quote(model, safe='')}",
                headers=headers,
            )
        except httpx.HTTPError as exc:
            return _fail(name, f"{base} unreachable ({type(exc).__name__})", "try again later")
        if response.status_code in (401, 403):
            return _skip(name, "Replicate refused the token")
        if response.status_code != 200:
            missing.append(f"{slug} ({response.status_code})")
    if missing:
        return _fail(
            name,
            "not found at Replicate: " + ", ".join(missing),
            "point those offerings at existing models with CATALOG_OVERRIDES",
        )
    return _pass(name, f"all {len(slugs)} model slugs resolve")


def _secret_key_bytes(secret: str) -> bytes | None:
    if not secret.startswith("whsec_"):
        return None
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        return None


async def check_webhook_secret(settings: Settings, http: httpx.AsyncClient) -> Check:
    name = "webhook secret"
    fix = (
        "set REPLICATE_WEBHOOK_SECRET to the `key` field of "
        "GET https://api.replicate.com/v1/webhooks/default/secret"
    )
    value = settings.replicate_webhook_secret
    if value is None or not value.get_secret_value():
        return _fail(name, "REPLICATE_WEBHOOK_SECRET is not set", fix)
    secret = value.get_secret_value()
    key = _secret_key_bytes(secret)
    if key is None or len(key) < 16:
        return _fail(name, "not of the form whsec_<base64 of at least 16 bytes>", fix)
    headers = _replicate_headers(settings)
    if headers is None:
        return _pass(name, "well-formed (not compared: no REPLICATE_API_TOKEN)")
    base = settings.replicate_base_url.rstrip("/")
    try:
        response = await http.get(f"{base}/v1/webhooks/default/secret", headers=headers)
    except httpx.HTTPError:
        return _pass(name, "well-formed (not compared: Replicate unreachable)")
    body = _json_object(response)
    live = body.get("key") if body is not None and response.status_code == 200 else None
    if not isinstance(live, str):
        return _pass(name, "well-formed (not compared: Replicate did not return the secret)")
    if not hmac.compare_digest(live.encode(), secret.encode()):
        return _fail(name, "differs from Replicate's: every webhook would be refused", fix)
    return _pass(name, "matches Replicate's default webhook secret")


def check_webhook_url(settings: Settings) -> Check:
    name = "webhook URL"
    url = settings.public_webhook_url
    if url is None:
        return _skip(name, "PUBLIC_WEBHOOK_URL unset: on Modal the functions learn it at start")
    parts = urlsplit(url)
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not local:
        return _fail(name, f"{url} is not https", "Replicate delivers to public https URLs")
    if not parts.path.endswith("/api/webhooks/replicate"):
        return _fail(
            name,
            f"{url} does not end in /api/webhooks/replicate",
            "use <webhook function URL>/api/webhooks/replicate",
        )
    return _pass(name, url)


async def check_bucket(settings: Settings, http: httpx.AsyncClient) -> Check:
    name = "storage bucket"
    if settings.storage_backend != "supabase":
        return _skip(name, f"STORAGE_BACKEND={settings.storage_backend}")
    key = settings.supabase_service_role_key
    if settings.supabase_url is None or key is None:
        return _fail(
            name,
            "SUPABASE_URL or SUPABASE_SERVICE_ROLE_KEY is not set",
            "set both from the project's API settings",
        )
    bucket = settings.storage_bucket
    create_fix = (
        f"create a PRIVATE bucket {bucket!r} with a file size limit of at least "
        f"{settings.max_output_bytes} bytes (Storage > New bucket)"
    )
    url = f"{settings.supabase_url.rstrip('/')}/storage/v1/bucket/{quote(bucket, safe='')}"
    secret = key.get_secret_value()
    try:
        response = await http.get(
            url, headers={"apikey": secret, "Authorization": f"Bearer {secret}"}
        )
    except httpx.HTTPError as exc:
        return _fail(name, f"Storage unreachable ({type(exc).__name__})", "check SUPABASE_URL")
    body = _json_object(response)
    if response.status_code != 200 or body is None:
        return _fail(name, f"bucket {bucket!r} not found ({response.status_code})", create_fix)
    if body.get("public") is not False:
        return _fail(
            name,
            f"bucket {bucket!r} is public: anyone could read every video",
            f"make {bucket!r} private (videos are served through signed URLs)",
        )
    limit = body.get("file_size_limit")
    if isinstance(limit, int) and limit < settings.max_output_bytes:
        return _fail(
            name,
            f"bucket limit {limit} bytes < MAX_OUTPUT_BYTES {settings.max_output_bytes}",
            f"raise the bucket's file size limit or lower MAX_OUTPUT_BYTES to {limit}",
        )
    if limit is None and settings.max_output_bytes > FREE_PLAN_FILE_LIMIT:
        return _pass(
            name,
            f"private; no bucket limit (the plan's global limit applies: "
            f"{FREE_PLAN_FILE_LIMIT} bytes on the Free plan)",
        )
    return _pass(name, f"private, file size limit {limit or 'the global one'}")


async def check_migrations(database_url: str | None) -> Check:
    name = "migrations"
    if database_url is None:
        return _skip(name, "set DATABASE_URL (the session pooler URL) to compare")
    import psycopg

    from shared.db.migrate import pending_migrations

    try:
        pending = await pending_migrations(database_url)
    except (psycopg.Error, OSError) as exc:
        return _fail(
            name,
            f"database unreachable ({type(exc).__name__})",
            "check DATABASE_URL (Supabase: the session pooler URL, port 5432)",
        )
    except ConfigurationError as exc:
        return _fail(name, exc.detail, "see the message")
    if pending:
        return _fail(name, "pending: " + ", ".join(pending), "run `wanctl migrate`")
    return _pass(name, "current")


async def run_checks(
    settings: Settings,
    *,
    database_url: str | None,
    http: httpx.AsyncClient | None = None,
) -> list[Check]:
    """Every check, in order; a check never raises (a failure is its answer)."""
    own = http is None
    client = http or httpx.AsyncClient(timeout=TIMEOUT_S)
    try:
        checks: list[Callable[[], Awaitable[Check]]] = [
            lambda: check_auth(settings, client),
            lambda: check_replicate_token(settings, client),
            lambda: check_models(settings, client),
            lambda: check_webhook_secret(settings, client),
            lambda: _immediate(check_webhook_url(settings)),
            lambda: check_bucket(settings, client),
            lambda: check_migrations(database_url),
        ]
        return [await check() for check in checks]
    finally:
        if own:
            await client.aclose()


async def _immediate(check: Check) -> Check:
    return check
