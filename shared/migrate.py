"""Apply migrations/*.sql in order, once each, recording what was applied.

The same files apply unchanged to a Supabase project and to the local PostgreSQL. Each file runs
in its own transaction together with its record, so a failed file leaves nothing behind. An
advisory lock keeps two runners (two deploys, two test workers) from applying at once, and a
checksum catches an applied file that was edited afterwards.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from shared.errors import ConfigurationError

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x57414E  # any fixed bigint; "WAN"

_META = """
create schema if not exists app_migrations;
create table if not exists app_migrations.applied (
  version text primary key,
  name text not null,
  checksum text not null,
  applied_at timestamptz not null default now()
);
comment on table app_migrations.applied is 'Migrations applied by wanctl migrate.';
"""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files, ordered by version; a stray or duplicate name is an error."""
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


async def apply_migrations(conninfo: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every pending migration; return the versions applied now (empty when up to date)."""
    import psycopg

    migrations = load_migrations(directory)
    applied_now: list[str] = []
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await conn.execute("select pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            await conn.execute(_META)
            cur = await conn.execute("select version, checksum from app_migrations.applied")
            done = {str(v): str(c) for v, c in await cur.fetchall()}
            for migration in migrations:
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        raise ConfigurationError(
                            f"migration {migration.version}_{migration.name} was edited after it "
                            "was applied; add a new migration instead"
                        )
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql.encode())
                    await conn.execute(
                        "insert into app_migrations.applied (version, name, checksum) "
                        "values (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                applied_now.append(migration.version)
        finally:
            await conn.execute("select pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now
