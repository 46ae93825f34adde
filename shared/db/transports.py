"""Transports to the database's SQL functions, and the one SQLSTATE -> domain error table.

- `PostgresTransport`: psycopg's async pool, `select * from public.fn(p_x => %(p_x)s, ...)`;
  used locally, in tests, and in production when a direct connection is preferred.
- `SupabaseTransport`: supabase-py's PostgREST client (`postgrest`) `.rpc()`, built as
  supabase-py's umbrella client builds it (without the auth, realtime and functions clients it
  would also build and import: ~85 ms of CPU at every cold start).

Both translate database errors through ONE table, `SQLSTATE_ERRORS`, keyed by the stable
SQLSTATE codes that migrations/ raise.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from shared.core import errors
from shared.core.domain import JsonObject
from shared.core.errors import JsonValue

if TYPE_CHECKING:
    import httpx
    from postgrest import AsyncPostgrestClient
    from postgrest.exceptions import APIError
    from psycopg_pool import AsyncConnectionPool

log = logging.getLogger(__name__)

RpcArg = (
    str
    | int
    | float
    | bool
    | uuid.UUID
    | datetime
    | JsonObject
    | list[JsonObject]
    | list[uuid.UUID]
    | None
)
RpcRow = dict[str, JsonValue]

# SQLSTATE -> (domain error, detail shown to callers). Every code raised in migrations/ must be
# here (tests/shared/test_rpc.py reads the migrations and checks).
SQLSTATE_ERRORS: dict[str, tuple[type[errors.AppError], str]] = {
    "WN402": (errors.InsufficientCredits, "Not enough credits for this generation."),
    "WN403": (errors.AccountOnHold, errors.AccountOnHold.default_detail),  # payments (0010)
    "WN404": (errors.NotFound, "Generation not found."),
    "WN409": (errors.IdempotencyConflict, errors.IdempotencyConflict.default_detail),
    "WN412": (errors.InvalidTransition, errors.InvalidTransition.default_detail),
    "WN422": (errors.InvalidInput, "Invalid request."),
    "WN429": (errors.TooManyActive, errors.TooManyActive.default_detail),
    # Guardrails (issue 14): the per-user rate limit and the provider's daily budget.
    "WN430": (errors.RateLimited, errors.RateLimited.default_detail),
    "WN503": (errors.BudgetExhausted, errors.BudgetExhausted.default_detail),
    # Not ours, but meaningful: statement_timeout fired (a transient overload, not a bug)...
    "57014": (errors.DatabaseUnavailable, errors.DatabaseUnavailable.default_detail),
    # ...and the caller lacks EXECUTE (a deployment mistake, not the user's).
    "42501": (errors.PermissionDenied, "The service is not allowed to do that."),
    # Serialization failure and deadlock, still there after the one retry (RETRIED_SQLSTATES).
    "40001": (errors.DatabaseUnavailable, errors.DatabaseUnavailable.default_detail),
    "40P01": (errors.DatabaseUnavailable, errors.DatabaseUnavailable.default_detail),
}
# The database rolled the whole call back, so running it again is safe for every function.
RETRIED_SQLSTATES = frozenset({"40001", "40P01"})
# A Postgres SQLSTATE (PostgREST forwards them); PGRST codes and HTTP statuses are not.
_SQLSTATE = re.compile(r"^[0-9A-Z]{5}$")
# Generations take minutes; this tells a client when trying again is worth it.
TOO_MANY_ACTIVE_RETRY_S = 30
_ENTITY_DETAIL = {
    "user": "User not found.",
    "generation": "Generation not found.",
    "purchase": "Purchase not found.",
}
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def translate(sqlstate: str | None, message: str | None, detail: str | None) -> errors.AppError:
    """Turn a database error into the domain error for its SQLSTATE (unknown codes: 500).

    DETAIL, when it is a JSON object, carries fields for the caller (balance, required, ...).
    """
    extra: dict[str, JsonValue] = {}
    if detail:
        try:
            parsed = json.loads(detail)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            extra = {str(k): v for k, v in parsed.items()}
    entry = SQLSTATE_ERRORS.get(sqlstate or "")
    if entry is None:
        return errors.AppError(f"Database error {sqlstate or 'unknown'}.")
    cls, readable = entry
    if cls is errors.NotFound and isinstance(extra.get("entity"), str):
        readable = _ENTITY_DETAIL.get(str(extra["entity"]), readable)
    if cls is errors.InvalidInput and message:
        readable = message[0].upper() + message[1:] + "."
    if cls is errors.InvalidTransition:
        if message:
            readable = message[0].upper() + message[1:] + "."
        if isinstance(extra.get("status"), str):
            readable = f"{readable[:-1]} (it is {extra['status']})."
    if cls is errors.TooManyActive and isinstance(extra.get("limit"), int):
        readable = (
            f"You already have {extra['limit']} generations running; "
            "wait for one to finish and try again."
        )
    if cls is errors.AccountOnHold and isinstance(extra.get("reason"), str):
        readable = (
            f"Your account is on hold ({extra['reason']}), so it cannot start generations or "
            "buy credits; your videos and history stay readable. Contact support to resolve it."
        )
    headers = {"Retry-After": str(TOO_MANY_ACTIVE_RETRY_S)} if cls is errors.TooManyActive else None
    retry_after = extra.get("retry_after_s")
    if cls in (errors.RateLimited, errors.BudgetExhausted) and isinstance(retry_after, int):
        headers = {"Retry-After": str(retry_after)}
        if cls is errors.RateLimited and isinstance(extra.get("limit"), int):
            readable = (
                f"You can start at most {extra['limit']} generations or checkouts a minute; "
                f"try again in {retry_after} s. Nothing was charged."
            )
    error = cls(readable, headers=headers)
    error.extra.update(extra)
    return error


class Transport(Protocol):
    async def call(self, fn: str, args: Mapping[str, RpcArg]) -> list[RpcRow]:
        """Call public.<fn> with named arguments and return its rows as dicts."""
        ...

    async def aclose(self) -> None: ...


def _check_identifiers(fn: str, args: Mapping[str, RpcArg]) -> None:
    # Names are spliced into SQL text; they come from our code, but a typo must not be SQL.
    for name in (fn, *args):
        if not _IDENTIFIER.match(name):
            raise ValueError(f"not an SQL identifier: {name!r}")


@functools.lru_cache(maxsize=256)
def _call_sql(fn: str, names: tuple[str, ...]) -> str:
    """`select * from public.fn(a => %s, ...)` for one call shape, built and checked once
    (positional placeholders: psycopg need not map names to values on every call)."""
    _check_identifiers(fn, dict.fromkeys(names))
    placeholders = ", ".join(f"{name} => %s" for name in names)
    return f"select * from public.{fn}({placeholders})"


class PostgresTransport:
    """SQL functions over a psycopg async pool (the role is set per connection)."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    @classmethod
    async def open(
        cls,
        conninfo: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        role: str | None = None,
        open_timeout_s: float = 10.0,
        statement_timeout_ms: int = 15_000,
    ) -> PostgresTransport:
        import psycopg
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool

        async def configure(conn: psycopg.AsyncConnection[object]) -> None:
            conn.row_factory = dict_row
            if role:
                # Act as the API's role so EXECUTE grants are enforced as on Supabase.
                await conn.execute(
                    psycopg.sql.SQL("set role {}").format(psycopg.sql.Identifier(role))
                )
            # No call waits on the database forever (PostgREST has its own timeout).
            await conn.execute(
                psycopg.sql.SQL("set statement_timeout = {}").format(
                    psycopg.sql.Literal(statement_timeout_ms)
                )
            )
            await conn.commit()

        pool: AsyncConnectionPool = AsyncConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            configure=configure,
            open=False,
            timeout=10.0,
            kwargs={"autocommit": True},
        )
        try:
            await pool.open(wait=True, timeout=open_timeout_s)
        except Exception as exc:
            await pool.close()
            raise errors.DatabaseUnavailable() from exc
        return cls(pool)

    async def call(self, fn: str, args: Mapping[str, RpcArg]) -> list[RpcRow]:
        import psycopg
        from psycopg.types.json import Jsonb
        from psycopg_pool import PoolTimeout

        query = _call_sql(fn, tuple(args))
        params = [Jsonb(v) if _is_json(v) else v for v in args.values()]
        for attempt in (1, 2):
            try:
                async with self._pool.connection() as conn:
                    cur = await conn.execute(query, params)
                    rows = await cur.fetchall()
            except PoolTimeout as exc:
                raise errors.DatabaseUnavailable() from exc
            except psycopg.Error as exc:
                if attempt == 1 and exc.sqlstate in RETRIED_SQLSTATES:
                    log.warning("%s: %s (%s), retrying once", fn, exc.sqlstate, type(exc).__name__)
                    continue
                if isinstance(exc, psycopg.errors.OperationalError):
                    raise errors.DatabaseUnavailable() from exc
                raise translate(
                    exc.sqlstate, exc.diag.message_primary, exc.diag.message_detail
                ) from exc
            return [dict(row) for row in rows]
        raise AssertionError("unreachable: the second attempt returns or raises")

    async def aclose(self) -> None:
        await self._pool.close()


class SupabaseTransport:
    """SQL functions through PostgREST with supabase-py (the service-role key)."""

    def __init__(self, client: AsyncPostgrestClient, http: httpx.AsyncClient | None = None) -> None:
        self._client = client
        self._http = http

    @classmethod
    async def open(
        cls, url: str, service_role_key: str, *, timeout_s: float = 10.0
    ) -> SupabaseTransport:
        from postgrest import AsyncPostgrestClient

        from shared.core.http import async_client

        # Our own httpx client: the timeout lives there (postgrest's `timeout` option is
        # deprecated), and the headers are the ones supabase-py's client sends as this key.
        http = async_client(timeout=timeout_s)
        client = AsyncPostgrestClient(
            f"{url.rstrip('/')}/rest/v1",
            headers={"apiKey": service_role_key, "Authorization": f"Bearer {service_role_key}"},
            http_client=http,
        )
        return cls(client, http)

    async def call(self, fn: str, args: Mapping[str, RpcArg]) -> list[RpcRow]:
        import httpx
        from postgrest.exceptions import APIError

        _check_identifiers(fn, args)
        params = {k: _jsonable(v) for k, v in args.items()}
        for attempt in (1, 2):
            try:
                # A POST sends `params` as the JSON body (postgrest-py annotates it as strings
                # only, for the GET form's query string).
                response = await self._client.rpc(fn, params).execute()  # type: ignore[arg-type]
            except APIError as exc:
                if attempt == 1 and exc.code in RETRIED_SQLSTATES:
                    log.warning("%s: %s (%s), retrying once", fn, exc.code, exc.message)
                    continue
                raise _api_error(fn, exc) from exc
            except httpx.HTTPError as exc:
                log.warning("%s: PostgREST unreachable: %r", fn, exc)
                raise errors.DatabaseUnavailable() from exc
            return _rows(fn, response.data)
        raise AssertionError("unreachable: the second attempt returns or raises")

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._http is not None:
            await self._http.aclose()


def _api_error(fn: str, exc: APIError) -> errors.AppError:
    """A PostgREST error as the domain error: a forwarded Postgres SQLSTATE through the one
    table (as the psycopg transport would); anything else (a PGRST code, or a gateway's 5xx or
    non-JSON page, where postgrest-py puts the HTTP status in `code`) means the database is out
    of reach for us, not that the caller did something wrong: 503."""
    code = exc.code or ""
    if _SQLSTATE.match(code):
        detail = exc.details if isinstance(exc.details, str) or exc.details is None else None
        return translate(code, exc.message, detail)
    log.warning("%s: PostgREST error %s: %s", fn, code or "without a code", exc.message)
    return errors.DatabaseUnavailable()


def _rows(fn: str, data: object) -> list[RpcRow]:
    """Rows from a 2xx answer; a body that is not JSON rows (postgrest-py hands non-JSON text
    through as a string) is a broken gateway, not a result."""
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        log.warning("%s: PostgREST answered something that is not rows: %.200r", fn, data)
        raise errors.DatabaseUnavailable()
    return [{str(k): v for k, v in row.items()} for row in data]


def _is_json(value: RpcArg) -> bool:
    """Objects and lists of objects go as jsonb; a list of ids is a uuid[] argument."""
    if isinstance(value, list):
        return not all(isinstance(v, uuid.UUID) for v in value)
    return isinstance(value, dict)


def _jsonable(value: RpcArg) -> JsonValue:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        items: list[JsonValue] = [str(v) if isinstance(v, uuid.UUID) else v for v in value]
        return items
    return value
