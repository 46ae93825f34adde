"""Emulated PostgREST: `POST /rest/v1/rpc/{function}`, the one endpoint our code calls.

As PostgREST (docs.postgrest.org: api/functions, references/errors, auth):
- the bearer JWT (the apikey's when no user token is sent) is verified with the project's keys
  and its `role` claim becomes the transaction's role (`set local role`), with the claims in
  `request.jwt.claims` (`set_config(..., true)`): grants and RLS apply as on Supabase;
- the function is found in the exposed schema (`public`) by name AND by the JSON body's keys
  (named arguments; omitted ones must have defaults); none: 404 PGRST202, several: 300 PGRST203;
- arguments are converted from JSON to the parameters' types by the database
  (`json_to_record`), and the SQL really runs in the embedded PostgreSQL;
- rows answer as a JSON array, a non-set composite as an object, a scalar as the value, void as
  204; `Accept: application/vnd.pgrst.object+json` asks for exactly one object (else 406
  PGRST116), `Prefer: count=exact` fills Content-Range's total;
- database errors answer `{code, message, details, hint}` with PostgREST's SQLSTATE -> HTTP
  status table (`http_status`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import Response

from local.supabase.context import EmulatorContext, JwtRejected, bearer_token

if TYPE_CHECKING:
    import psycopg

SCHEMA = "public"
ANON_ROLE = "anon"
# The roles Supabase's authenticator may switch to; any other `role` claim is refused by the
# database (PostgREST passes the 42501 on), even in a token signed with the project's secret.
API_ROLES = frozenset({"anon", "authenticated", "service_role"})
OBJECT_MEDIA = "application/vnd.pgrst.object+json"
JSON_MEDIA = "application/json; charset=utf-8"

# PostgREST's table, most specific first (prefixes of SQLSTATEs); anything else is 400.
_STATUS_BY_PREFIX: tuple[tuple[str, int], ...] = (
    ("23503", 409), ("23505", 409), ("25006", 405), ("53400", 500), ("P0001", 400),
    ("42883", 404), ("42P01", 404), ("42P17", 500),
    ("08", 503), ("09", 500), ("0L", 403), ("0P", 403), ("25", 500), ("28", 403),
    ("2D", 500), ("38", 500), ("39", 500), ("3B", 500), ("40", 500), ("53", 503),
    ("54", 500), ("55", 500), ("57", 500), ("58", 500), ("F0", 500), ("HV", 500),
    ("P0", 500), ("XX", 500),
)  # fmt: skip


def http_status(sqlstate: str, *, anonymous: bool) -> int:
    """PostgREST's HTTP status for a SQLSTATE (42501: 401 when anonymous, else 403)."""
    if sqlstate == "42501":
        return 401 if anonymous else 403
    if len(sqlstate) == 5 and sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        return int(sqlstate[2:])  # RAISE ... USING ERRCODE = 'PT402' sets the status itself
    return next((s for p, s in _STATUS_BY_PREFIX if sqlstate.startswith(p)), 400)


def error(
    status: int,
    code: str,
    message: str,
    details: str | None = None,
    hint: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {"code": code, "details": details, "hint": hint, "message": message}
    return Response(
        json.dumps(body),
        status,
        headers={"Proxy-Status": f"PostgREST; error={code}", **(headers or {})},
        media_type=JSON_MEDIA,
    )


@dataclass(frozen=True)
class Function:
    """One candidate from pg_proc: its input parameters and what it returns."""

    names: tuple[str, ...]
    types: tuple[str, ...]
    required: int  # the first `required` inputs have no default
    returns_set: bool
    returns_rows: bool  # composite or record (returns table / out parameters)
    returns_void: bool
    outputs: tuple[str, ...] = ()  # OUT/INOUT/TABLE parameter names

    def accepts(self, keys: set[str]) -> bool:
        return keys <= set(self.names) and set(self.names[: self.required]) <= keys


_LOOKUP = """
select coalesce(p.proargnames, '{}')::text[] as names,
       coalesce(p.proargmodes::text[], '{}') as modes,
       array(select format_type(t, null) from unnest(p.proargtypes::oid[]) with ordinality
             as a(t, i) order by i) as types,
       p.pronargs, p.pronargdefaults, p.proretset,
       rt.typtype in ('c', 'p') and p.prorettype <> 'pg_catalog.void'::regtype as returns_rows,
       p.prorettype = 'pg_catalog.void'::regtype as returns_void
  from pg_catalog.pg_proc p
  join pg_catalog.pg_namespace n on n.oid = p.pronamespace
  join pg_catalog.pg_type rt on rt.oid = p.prorettype
 where n.nspname = %s and p.proname = %s and p.prokind = 'f'
"""


async def _candidates(
    conn: psycopg.AsyncConnection[tuple[object, ...]], name: str
) -> list[Function]:
    cur = await conn.execute(_LOOKUP, (SCHEMA, name))
    found: list[Function] = []
    for names, modes, types, nargs, ndefaults, retset, rows, void in await cur.fetchall():
        assert isinstance(names, list)
        assert isinstance(modes, list)
        assert isinstance(types, list)
        assert isinstance(nargs, int)
        assert isinstance(ndefaults, int)
        if modes:  # names cover every argument; keep the inputs (in, inout, variadic)
            inputs = [str(n) for n, m in zip(names, modes, strict=False) if m in ("i", "b", "v")]
        else:
            inputs = [str(n) for n in names[:nargs]]
        if len(inputs) != nargs or any(not n for n in inputs):
            continue  # unnamed parameters cannot be called by name
        outputs = tuple(str(n) for n, m in zip(names, modes, strict=False) if m in ("o", "b", "t"))
        found.append(
            Function(
                names=tuple(inputs),
                types=tuple(str(t) for t in types),
                required=nargs - ndefaults,
                returns_set=bool(retset),
                # One OUT column still answers objects named after it, as PostgREST does.
                returns_rows=bool(rows) or bool(outputs),
                returns_void=bool(void),
                outputs=outputs,
            )
        )
    return found


def _call_sql(fn_name: str, fn: Function, keys: list[str]) -> psycopg.sql.Composed:
    """The call with the body's arguments converted by json_to_record, as PostgREST does."""
    from psycopg import sql

    types = dict(zip(fn.names, fn.types, strict=True))
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(k), sql.SQL(types[k])) for k in keys
    )
    args = sql.SQL(", ").join(
        sql.SQL("{} => _args.{}").format(sql.Identifier(k), sql.Identifier(k)) for k in keys
    )
    call = sql.SQL("{}.{}({})").format(sql.Identifier(SCHEMA), sql.Identifier(fn_name), args)
    source = (
        sql.SQL("json_to_record(%s::json) as _args({})").format(columns)
        if keys
        else sql.SQL("(select) as _args")
    )
    if fn.returns_void:
        return sql.SQL("select {} from {}").format(call, source)
    if fn.returns_rows:
        # A function with one OUT column returns that column's type, not a record: naming
        # the column in the alias keeps it an object with that key.
        alias = (
            sql.SQL("({})").format(sql.Identifier(fn.outputs[0]))
            if len(fn.outputs) == 1
            else sql.SQL("")
        )
        return sql.SQL(
            "select coalesce(json_agg(_r), '[]'::json)"
            " from (select _f.* from {}, lateral {} as _f{}) as _r"
        ).format(source, call, alias)
    if fn.returns_set:
        return sql.SQL(
            "select coalesce(json_agg(_f._v), '[]'::json) from {}, lateral {} as _f(_v)"
        ).format(source, call)
    return sql.SQL("select json_build_array(to_json({})) from {}").format(call, source)


def router(ctx: EmulatorContext) -> APIRouter:
    api = APIRouter(prefix="/rest/v1")

    @api.post("/rpc/{function}")
    async def rpc(function: str, request: Request) -> Response:
        import psycopg
        from psycopg import sql

        token = bearer_token(request.headers.get("authorization"))
        claims: dict[str, object] = {"role": ANON_ROLE}
        if token is not None:
            try:
                claims = ctx.keys.verify(token)
            except JwtRejected as exc:
                return error(401, exc.code, exc.message, headers={"WWW-Authenticate": "Bearer"})
        role = claims.get("role") if isinstance(claims.get("role"), str) else ANON_ROLE
        assert isinstance(role, str)
        if role not in API_ROLES:
            return error(403, "42501", f'permission denied to set role "{role}"')
        profile = request.headers.get("content-profile", SCHEMA)
        if profile != SCHEMA:
            return error(406, "PGRST106", f"The schema must be one of the following: {SCHEMA}")
        accept = request.headers.get("accept", "application/json")
        single = OBJECT_MEDIA in accept
        if not single and not any(m in accept for m in ("application/json", "*/*")):
            return error(406, "PGRST107", f"None of these media types are available: {accept}")
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return error(400, "PGRST102", "Empty or invalid json")
        if not isinstance(body, dict):
            return error(400, "PGRST102", "Expected a JSON object of named arguments")
        keys = sorted(body)

        async with ctx.db().connection() as conn:
            try:
                async with conn.transaction():
                    await conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
                    await conn.execute(
                        "select set_config('request.jwt.claims', %s, true),"
                        " set_config('request.method', 'POST', true),"
                        " set_config('request.path', %s, true)",
                        (json.dumps(claims), request.url.path),
                    )
                    matches = [f for f in await _candidates(conn, function) if f.accepts(set(keys))]
                    if len(matches) != 1:
                        return _no_single_match(function, keys, len(matches))
                    (fn,) = matches
                    params = (json.dumps(body),) if keys else None
                    cur = await conn.execute(_call_sql(function, fn, keys), params)
                    row = await cur.fetchone()
            except psycopg.Error as exc:
                return _database_error(exc, anonymous=role == ANON_ROLE)
        if fn.returns_void:
            return Response(status_code=204)
        assert row is not None
        result = row[0]
        if not isinstance(result, list):
            result = [result]
        if not fn.returns_set:  # one composite (an object) or one scalar (the value)
            return _json(result[0], None, request)
        if single:
            if len(result) != 1:
                return error(
                    406,
                    "PGRST116",
                    "Cannot coerce the result to a single JSON object",
                    f"The result contains {len(result)} rows",
                )
            return _json(result[0], 1, request)
        return _json(result, len(result), request)

    return api


def _json(value: object, rows: int | None, request: Request) -> Response:
    headers: dict[str, str] = {}
    if rows is not None:
        total = str(rows) if "count=exact" in request.headers.get("prefer", "") else "*"
        headers["Content-Range"] = f"0-{rows - 1}/{total}" if rows else f"*/{total}"
    return Response(json.dumps(value), 200, headers=headers, media_type=JSON_MEDIA)


def _no_single_match(function: str, keys: list[str], count: int) -> Response:
    qualified = f"{SCHEMA}.{function}"
    if count == 0:
        with_args = f"({', '.join(keys)})" if keys else " without parameters"
        return error(
            404,
            "PGRST202",
            f"Could not find the function {qualified}{with_args} in the schema cache",
            f"Searched for the function {qualified} with parameters {', '.join(keys)} or with a "
            "single unnamed json/jsonb parameter, but no matches were found in the schema cache.",
        )
    return error(
        300,
        "PGRST203",
        f"Could not choose the best candidate function between several {qualified} overloads",
        hint="Try renaming the parameters or the function itself in the database so function "
        "overloading can be resolved",
    )


def _database_error(exc: psycopg.Error, *, anonymous: bool) -> Response:
    sqlstate = exc.sqlstate or "XX000"
    diag = exc.diag
    return error(
        http_status(sqlstate, anonymous=anonymous),
        sqlstate,
        diag.message_primary or str(exc),
        diag.message_detail,
        diag.message_hint,
    )
