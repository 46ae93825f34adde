"""Apply the SQL in migrations/: versioned files once each, in order; definitions whenever they
change.

- Versioned (`migrations/NNNN_name.sql`): tables, columns, indexes, data. Each applies once, in
  its own transaction together with its record; a checksum catches a file edited after it was
  applied.
- Definitions (`migrations/definitions/**/*.sql`): one file per function, trigger or policy set,
  holding its ONE current definition (Flyway's repeatable migrations). A file is re-applied
  whenever its checksum differs from the one recorded, after every versioned file. `language sql`
  bodies are checked at creation, so a definition that needs another one not yet applied is
  retried after the others (undefined function / table), until nothing more can be applied.
- Privileges are stated here once, not in each file, in the transaction that applies the file
  (Supabase grants every API role ALL on new objects in public; they never keep it even for a
  moment): a function may be executed by service_role only if it is public, by nobody if it is
  private (`shared.db.drift` checks this in the catalog); a table with a policies/ file has RLS
  on and only service_role's SELECT before the file adds what API users may read.

The same files apply unchanged to a Supabase project and to the local PostgreSQL. An advisory
lock keeps two runners (two deploys, two test workers) from applying at once. A database migrated
with the files from before the SQL baseline is recognised by its recorded checksums and upgraded
in place (shared.db.legacy); `shared.db.drift` checks that the catalog matches the definitions.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shared.core.errors import ConfigurationError
from shared.db.legacy import (
    LEGACY_CHECKSUMS,
    RESET_HINT,
    SQUASHED_INTO,
    legacy_state,
    upgrade_legacy,
)

if TYPE_CHECKING:
    import psycopg


def _migrations_dir() -> Path:
    """migrations/ of the source tree, or its copy shipped in the wheel as shared/migrations
    (pyproject.toml force-includes it): an installed `wanctl migrate` applies the same files."""
    shipped = Path(__file__).resolve().parents[1] / "migrations"
    return shipped if shipped.is_dir() else Path(__file__).resolve().parents[2] / "migrations"


MIGRATIONS_DIR = _migrations_dir()
DEFINITIONS = "definitions"
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_DEFINITION = re.compile(r"^[a-z0-9_]+(/[a-z0-9_]+)*\.sql$")
_LOCK_KEY = 0x57414E  # any fixed bigint; "WAN"
# A definition that refers to one not applied yet: try it again after the others.
_RETRY_LATER = frozenset({"42883", "42P01", "42704"})
# The privilege rules (see the module's docstring). Every signature of the function a file
# defines gets its schema's rule (after the file's own drops there is one signature).
_SIGNATURES = """
select format('%%I.%%I(%%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid))
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where n.nspname = %s and p.proname = %s
"""
_FUNCTION_RULES = {
    "public": "revoke all on function {0} from public, anon, authenticated, service_role;"
    " grant execute on function {0} to service_role",
    "private": "revoke all on function {0} from public, anon, authenticated, service_role",
}
_TABLE_RULE = (
    "alter table {0} enable row level security;"
    " revoke all on {0} from anon, authenticated, service_role;"
    " grant select on {0} to service_role"
)

_META = """
create schema if not exists app_migrations;
create table if not exists app_migrations.applied (
  version text primary key,
  name text not null,
  checksum text not null,
  applied_at timestamptz not null default now()
);
comment on table app_migrations.applied is 'Versioned migrations applied by wanctl migrate.';
create table if not exists app_migrations.definitions (
  path text primary key,
  checksum text not null,
  applied_at timestamptz not null default now()
);
comment on table app_migrations.definitions is
  'Repeatable definitions (functions, triggers, policies) and the checksum last applied.';
"""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True)
class Definition:
    path: str  # relative to migrations/definitions, e.g. "apply_prediction.sql"
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The versioned files, ordered by version; a stray or duplicate name is an error."""
    found: dict[str, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if match is None:
            raise ConfigurationError(f"migration file name must be NNNN_name.sql: {path.name}")
        version, name = match.groups()
        if version in found:
            raise ConfigurationError(f"two migrations share version {version}")
        found[version] = Migration(version, name, path.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def load_definitions(directory: Path = MIGRATIONS_DIR) -> list[Definition]:
    """The definition files under migrations/definitions, in path order."""
    root = directory / DEFINITIONS
    found: list[Definition] = []
    for path in sorted(root.rglob("*.sql")):
        rel = path.relative_to(root).as_posix()
        if not _DEFINITION.match(rel):
            raise ConfigurationError(f"definition file name must be lower_snake.sql: {rel}")
        found.append(Definition(rel, path.read_text(encoding="utf-8")))
    return found


async def apply_migrations(conninfo: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every pending versioned migration, then every changed definition; return what was
    applied now (versions, then definition paths; empty when up to date)."""
    import psycopg

    migrations = load_migrations(directory)
    definitions = load_definitions(directory)
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await conn.execute("select pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            await conn.execute(_META)
            cur = await conn.execute("select version, checksum from app_migrations.applied")
            done = {str(v): str(c) for v, c in await cur.fetchall()}
            if legacy_state(done):
                # Old records, old functions, pending files and every definition change in one
                # transaction: a failure leaves the database as it was.
                baseline = next(m for m in migrations if m.version == SQUASHED_INTO)
                async with conn.transaction():
                    await upgrade_legacy(conn, baseline.name, baseline.checksum)
                    done = {k: v for k, v in done.items() if k not in LEGACY_CHECKSUMS}
                    done[baseline.version] = baseline.checksum
                    applied_now = await _apply_all(conn, migrations, definitions, done)
            else:
                applied_now = await _apply_all(conn, migrations, definitions, done)
        finally:
            await conn.execute("select pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


async def _apply_all(
    conn: psycopg.AsyncConnection[tuple[object, ...]],
    migrations: list[Migration],
    definitions: list[Definition],
    done: dict[str, str],
) -> list[str]:
    applied_now: list[str] = []
    for migration in migrations:
        if migration.version in done:
            if done[migration.version] != migration.checksum:
                raise ConfigurationError(
                    f"migration {migration.version}_{migration.name} was edited after it "
                    "was applied; add a new migration instead. " + RESET_HINT
                )
            continue
        await _apply_versioned(conn, migration)
        applied_now.append(migration.version)
    return applied_now + await _apply_definitions(conn, definitions)


async def _apply_versioned(
    conn: psycopg.AsyncConnection[tuple[object, ...]], migration: Migration
) -> None:
    """One versioned file and its record, in one transaction. A failure the file raises on
    purpose (a foreign table in the way) reaches the operator with its hint."""
    import psycopg

    try:
        async with conn.transaction():
            await conn.execute(migration.sql.encode())
            await conn.execute(
                "insert into app_migrations.applied (version, name, checksum) values (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
    except psycopg.Error as exc:
        hint = exc.diag.message_hint
        raise ConfigurationError(
            f"migration {migration.version}_{migration.name} failed: {exc.diag.message_primary}"
            + (f". {hint}" if hint else "")
        ) from exc


async def _apply_definitions(
    conn: psycopg.AsyncConnection[tuple[object, ...]], definitions: list[Definition]
) -> list[str]:
    import psycopg

    cur = await conn.execute("select path, checksum from app_migrations.definitions")
    recorded = {str(p): str(c) for p, c in await cur.fetchall()}
    pending = [d for d in definitions if recorded.get(d.path) != d.checksum]
    applied: list[str] = []
    while pending:
        deferred: list[tuple[Definition, psycopg.Error]] = []
        for definition in pending:
            try:
                async with conn.transaction():
                    await _apply_with_privileges(conn, definition)
                    await conn.execute(
                        "insert into app_migrations.definitions (path, checksum) values (%s, %s) "
                        "on conflict (path) do update "
                        "set checksum = excluded.checksum, applied_at = now()",
                        (definition.path, definition.checksum),
                    )
            except psycopg.Error as exc:
                if exc.sqlstate not in _RETRY_LATER:
                    raise ConfigurationError(
                        f"definition {definition.path} failed: {exc.sqlstate} {exc}"
                    ) from exc
                deferred.append((definition, exc))
                continue
            applied.append(definition.path)
        if len(deferred) == len(pending):
            first, error = deferred[0]
            raise ConfigurationError(
                f"definition {first.path} refers to something that does not exist: {error}"
            ) from error
        pending = [d for d, _ in deferred]
    return applied


async def _apply_with_privileges(
    conn: psycopg.AsyncConnection[tuple[object, ...]], definition: Definition
) -> None:
    """One definition file between the privilege rules for what it defines, named by its path:
    policies/<table>.sql the table public.<table> (its rule comes first, so the file's grants
    are added to it); triggers/ nothing; any other <schema>/<name>.sql or <name>.sql the
    function <schema or public>.<name> (its rule comes after the file created it)."""
    from psycopg import sql

    folder, _, stem = definition.path.removesuffix(".sql").rpartition("/")
    if folder == "policies":
        await conn.execute(sql.SQL(_TABLE_RULE).format(sql.Identifier("public", stem)))
    await conn.execute(definition.sql.encode())
    rule = _FUNCTION_RULES.get(folder or "public")
    if rule is None:
        return
    cur = await conn.execute(_SIGNATURES, (folder or "public", stem))
    for (signature,) in await cur.fetchall():
        # Quoted by format(%I) in _SIGNATURES.
        await conn.execute(sql.SQL(rule).format(sql.SQL(str(signature))))


async def configure_database(conninfo: str, *, signup_bonus_credits: int) -> None:
    """Write the settings that database code without arguments reads (the signup trigger's
    bonus) through public.configure_guardrails; `wanctl migrate` and the local stack call it."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await conn.execute(
            "select * from public.configure_guardrails(p_signup_bonus_credits => %s)",
            (signup_bonus_credits,),
        )


async def pending_migrations(conninfo: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """What `apply_migrations` would apply now (versions, then definition paths); read only."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        cur = await conn.execute("select to_regclass('app_migrations.definitions') is not null")
        row = await cur.fetchone()
        if row is None or not row[0]:
            return [m.version for m in load_migrations(directory)] + [
                d.path for d in load_definitions(directory)
            ]
        cur = await conn.execute("select version, checksum from app_migrations.applied")
        done = {str(v): str(c) for v, c in await cur.fetchall()}
        cur = await conn.execute("select path, checksum from app_migrations.definitions")
        recorded = {str(p): str(c) for p, c in await cur.fetchall()}
    pending: list[str] = []
    for migration in load_migrations(directory):
        if migration.version not in done:
            pending.append(migration.version)
        elif done[migration.version] != migration.checksum:
            raise ConfigurationError(
                f"migration {migration.version}_{migration.name} differs from the one applied"
            )
    pending += [d.path for d in load_definitions(directory) if recorded.get(d.path) != d.checksum]
    return pending
