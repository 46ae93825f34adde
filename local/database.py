"""The local database: an embedded PostgreSQL (pgserver) with Supabase's basics.

Used by `wanctl dev` and the tests; never deployed. Any other Postgres works too when named by
DATABASE_URL; the bootstrap is applied only where the `auth` schema is missing (a Supabase
project has it already).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from shared.db.migrate import apply_migrations

log = logging.getLogger(__name__)

BOOTSTRAP_SQL = Path(__file__).resolve().parent / "bootstrap.sql"
DEFAULT_DATA_DIR = Path(".local") / "pgdata"


class EmbeddedServer(Protocol):
    def get_uri(self, database: str | None = None) -> str: ...


def start_embedded(data_dir: Path = DEFAULT_DATA_DIR) -> EmbeddedServer:
    """Start (or join) the embedded server for data_dir; it stops when the last user exits."""
    import warnings

    # pgserver logs every attach/detach at INFO, including from atexit after streams closed.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its fallback is fine.
        warnings.simplefilter("ignore")
        import pgserver

        data_dir.mkdir(parents=True, exist_ok=True)
        server: EmbeddedServer = pgserver.get_server(  # type: ignore[attr-defined]
            str(data_dir.resolve()), cleanup_mode="stop"
        )
    return server


# Only when missing: on a real Supabase project auth.users is not ours to alter.
AUTH_COLUMNS_SQL = """
do $$
begin
  if not exists (
    select 1 from information_schema.columns
     where table_schema = 'auth' and table_name = 'users' and column_name = 'phone_confirmed_at'
  ) then
    alter table auth.users add column if not exists phone text unique;
    alter table auth.users add column phone_confirmed_at timestamptz;
  end if;
end
$$
"""


async def bootstrap(conninfo: str) -> bool:
    """Create Supabase's roles, auth schema and default privileges unless they exist."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        cur = await conn.execute(
            "select exists (select 1 from pg_namespace where nspname = 'auth')"
        )
        row = await cur.fetchone()
        if row is not None and row[0]:
            # A database bootstrapped before auth.users had these columns (as Supabase's has).
            await conn.execute(AUTH_COLUMNS_SQL)
            return False
        await conn.execute(BOOTSTRAP_SQL.read_bytes())
    return True


async def prepare(conninfo: str) -> list[str]:
    """Bootstrap if needed, then apply pending migrations; returns the versions applied."""
    if await bootstrap(conninfo):
        log.info("applied the Supabase-compatible bootstrap")
    return await apply_migrations(conninfo)


async def create_database(admin_conninfo: str, name: str, *, template: str | None = None) -> None:
    """CREATE DATABASE (optionally from a template); used by tests for a fresh copy each."""
    import psycopg
    from psycopg import sql

    async with await psycopg.AsyncConnection.connect(admin_conninfo, autocommit=True) as conn:
        query = sql.SQL("create database {}").format(sql.Identifier(name))
        if template is not None:
            query = sql.SQL("create database {} template {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        await conn.execute(query)


async def drop_database(admin_conninfo: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    async with await psycopg.AsyncConnection.connect(admin_conninfo, autocommit=True) as conn:
        await conn.execute(
            sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name))
        )


def with_database(conninfo: str, database: str) -> str:
    """The same server, another database (works for URIs with a socket dir in the query)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(conninfo)
    params["dbname"] = database
    return make_conninfo(**{k: str(v) for k, v in params.items() if v is not None})
