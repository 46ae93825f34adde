"""The migration runner: ordered, recorded, idempotent, and strict about edited files."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.errors import ConfigurationError
from shared.migrate import MIGRATIONS_DIR, apply_migrations, load_migrations
from tests.support import AdminConn


async def schema_fingerprint(admin: AdminConn) -> list[tuple[object, ...]]:
    cur = await admin.execute(
        """
        select 'fn', p.oid::regprocedure::text, md5(p.prosrc) from pg_proc p
          join pg_namespace n on n.oid = p.pronamespace where n.nspname in ('public', 'private')
        union all
        select 'col', table_name || '.' || column_name, data_type
          from information_schema.columns where table_schema = 'public'
        union all
        select 'policy', tablename || '.' || policyname, qual from pg_policies
        order by 1, 2
        """
    )
    return await cur.fetchall()


async def test_applying_twice_changes_nothing(database_url: str, admin: AdminConn) -> None:
    before = await schema_fingerprint(admin)
    assert await apply_migrations(database_url) == []
    assert await apply_migrations(database_url) == []
    assert await schema_fingerprint(admin) == before
    cur = await admin.execute("select version from app_migrations.applied order by version")
    assert [r[0] for r in await cur.fetchall()] == [m.version for m in load_migrations()]


async def test_edited_applied_migration_is_refused(
    database_url: str, admin: AdminConn, tmp_path: Path
) -> None:
    for path in MIGRATIONS_DIR.glob("*.sql"):
        (tmp_path / path.name).write_text(path.read_text() + "\n-- edited\n")
    with pytest.raises(ConfigurationError, match="was edited after it was applied"):
        await apply_migrations(database_url, tmp_path)


async def test_new_migration_is_applied_once(
    database_url: str, admin: AdminConn, tmp_path: Path
) -> None:
    for path in MIGRATIONS_DIR.glob("*.sql"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "9999_probe.sql").write_text("create table public.probe (id int);")
    assert await apply_migrations(database_url, tmp_path) == ["9999"]
    assert await apply_migrations(database_url, tmp_path) == []


async def test_failed_migration_leaves_nothing_behind(
    database_url: str, admin: AdminConn, tmp_path: Path
) -> None:
    for path in MIGRATIONS_DIR.glob("*.sql"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "9999_broken.sql").write_text(
        "create table public.half_done (id int);\nselect no_such_function();"
    )
    with pytest.raises(Exception, match="no_such_function"):
        await apply_migrations(database_url, tmp_path)
    cur = await admin.execute("select to_regclass('public.half_done') is null")
    assert await cur.fetchone() == (True,)


def test_badly_named_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "1_x.sql").write_text("select 1;")
    with pytest.raises(ConfigurationError, match=r"NNNN_name\.sql"):
        load_migrations(tmp_path)
