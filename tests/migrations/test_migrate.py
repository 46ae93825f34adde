"""The migration runner: ordered, recorded, idempotent, and strict about edited files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from shared.core.errors import ConfigurationError
from shared.db.drift import schema_drift
from shared.db.legacy import LEGACY_CHECKSUMS
from shared.db.migrate import MIGRATIONS_DIR, apply_migrations, load_migrations
from tests.support import AdminConn, balance, create_user


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


def _copy_versioned(tmp_path: Path) -> Path:
    """Copy the versioned migrations into tmp_path, next to an empty definitions folder (returned)
    for the test's own files."""
    for path in MIGRATIONS_DIR.glob("*.sql"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "definitions").mkdir()
    return tmp_path / "definitions"


@pytest.fixture
def definitions(tmp_path: Path) -> Path:
    """The empty definitions folder of a copy of the versioned migrations in tmp_path."""
    return _copy_versioned(tmp_path)


async def _one_row(admin: AdminConn, query: str) -> tuple[object, ...] | None:
    """The first row `query` returns (None when it returns none)."""
    cur = await admin.execute(query)
    return await cur.fetchone()


def _define_int_function(folder: Path, name: str, body: str, *, schema: str = "public") -> None:
    """A definition file <folder>/<name>.sql creating <schema>.<name>() returns int as `body`."""
    (folder / f"{name}.sql").write_text(
        f"create or replace function {schema}.{name}() returns int language sql as $$ {body} $$;"
    )


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
    _copy_versioned(tmp_path)
    (tmp_path / "9999_probe.sql").write_text("create table public.probe (id int);")
    assert await apply_migrations(database_url, tmp_path) == ["9999"]
    assert await apply_migrations(database_url, tmp_path) == []


async def test_failed_migration_leaves_nothing_behind(
    database_url: str, admin: AdminConn, tmp_path: Path
) -> None:
    _copy_versioned(tmp_path)
    (tmp_path / "9999_broken.sql").write_text(
        "create table public.half_done (id int);\nselect no_such_function();"
    )
    with pytest.raises(Exception, match="no_such_function"):
        await apply_migrations(database_url, tmp_path)
    assert await _one_row(admin, "select to_regclass('public.half_done') is null") == (True,)


def test_badly_named_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "1_x.sql").write_text("select 1;")
    with pytest.raises(ConfigurationError, match=r"NNNN_name\.sql"):
        load_migrations(tmp_path)


async def test_definition_is_reapplied_only_when_it_changes(
    database_url: str, admin: AdminConn, tmp_path: Path, definitions: Path
) -> None:
    _define_int_function(definitions, "probe_answer", "select 1")
    assert await apply_migrations(database_url, tmp_path) == ["probe_answer.sql"]
    assert await apply_migrations(database_url, tmp_path) == []
    _define_int_function(definitions, "probe_answer", "select 2")
    assert await apply_migrations(database_url, tmp_path) == ["probe_answer.sql"]
    assert await _one_row(admin, "select public.probe_answer()") == (2,)


async def test_function_defined_by_a_file_is_executable_by_service_role_only(
    database_url: str, admin: AdminConn, tmp_path: Path, definitions: Path
) -> None:
    # The files state no grants: the runner applies the one rule, public or private.
    (definitions / "private").mkdir()
    for schema, folder in (("public", definitions), ("private", definitions / "private")):
        _define_int_function(folder, "probe_answer", "select 1", schema=schema)
    await apply_migrations(database_url, tmp_path)
    cur = await admin.execute(
        "select r.rolname, has_function_privilege(r.rolname, 'public.probe_answer()', 'execute'),"
        " has_function_privilege(r.rolname, 'private.probe_answer()', 'execute')"
        " from pg_roles r where r.rolname in ('anon', 'authenticated', 'service_role') order by 1"
    )
    assert await cur.fetchall() == [
        ("anon", False, False),
        ("authenticated", False, False),
        ("service_role", True, False),
    ]


async def test_table_with_a_policies_file_is_locked_down_before_the_file_adds_grants(
    database_url: str, admin: AdminConn, tmp_path: Path, definitions: Path
) -> None:
    (tmp_path / "0099_probe_rows.sql").write_text("create table public.probe_rows (id int);")
    (definitions / "policies").mkdir()
    (definitions / "policies" / "probe_rows.sql").write_text(
        "grant select on public.probe_rows to authenticated;"
    )
    await apply_migrations(database_url, tmp_path)
    cur = await admin.execute(
        "select r.rolname, has_table_privilege(r.rolname, 'public.probe_rows', 'select'),"
        " has_table_privilege(r.rolname, 'public.probe_rows', 'insert, update, delete'),"
        " (select c.relrowsecurity from pg_class c where c.oid = 'public.probe_rows'::regclass)"
        " from pg_roles r where r.rolname in ('anon', 'authenticated', 'service_role') order by 1"
    )
    assert await cur.fetchall() == [
        ("anon", False, False, True),
        ("authenticated", True, False, True),
        ("service_role", True, False, True),
    ]


async def test_definition_needing_a_later_one_is_applied_after_it(
    database_url: str, admin: AdminConn, tmp_path: Path, definitions: Path
) -> None:
    # "a_" sorts first but its sql body needs "b_", which must be created first.
    _define_int_function(definitions, "a_outer", "select public.b_inner() + 1")
    _define_int_function(definitions, "b_inner", "select 41")
    assert await apply_migrations(database_url, tmp_path) == ["b_inner.sql", "a_outer.sql"]
    assert await _one_row(admin, "select public.a_outer()") == (42,)


async def test_definition_that_can_never_apply_is_named(
    database_url: str, admin: AdminConn, tmp_path: Path, definitions: Path
) -> None:
    _define_int_function(definitions, "orphan", "select public.no_such_thing()")
    with pytest.raises(ConfigurationError, match=r"orphan\.sql"):
        await apply_migrations(database_url, tmp_path)


async def test_helper_replaced_by_require_found_is_dropped_from_a_database_that_has_it(
    database_url: str, admin: AdminConn
) -> None:
    # A database migrated before private.require_found has private.raise_not_found; applying the
    # new file (its checksum differs from the one recorded there) leaves no trace of the old one.
    await admin.execute(
        "create function private.raise_not_found(p_entity text) returns void "
        "language sql security definer set search_path = '' as $$ select $$"
    )
    await admin.execute(
        "update app_migrations.definitions set checksum = 'old' "
        "where path = 'private/require_found.sql'"
    )
    assert await apply_migrations(database_url) == ["private/require_found.sql"]
    assert await schema_drift(admin) == []


async def _pretend_migrated_with_old_files(admin: AdminConn, versions: list[str]) -> None:
    # The baseline's versions become the old ones; later versions stay applied (their tables
    # are here already, as they would be once applied after the upgrade).
    await admin.execute(
        "delete from app_migrations.applied where version <= %s", (max(LEGACY_CHECKSUMS),)
    )
    for version in versions:
        await admin.execute(
            "insert into app_migrations.applied (version, name, checksum) values (%s, 'old', %s)",
            (version, LEGACY_CHECKSUMS[version]),
        )


async def test_database_migrated_with_the_old_files_is_upgraded_in_place(
    database_url: str, admin: AdminConn
) -> None:
    user = await create_user(admin, credits=40)
    await _pretend_migrated_with_old_files(admin, sorted(LEGACY_CHECKSUMS))
    # A helper the old files had and the definitions dropped, and a hand-made overload.
    await admin.execute(
        "create function private.status_rank(text) returns int language sql as $$ select 0 $$"
    )
    await admin.execute(
        "create or replace function public.get_generation(p_user_id uuid, p_generation_id uuid) "
        "returns table (generation jsonb) language sql as $$ select null::jsonb $$"
    )
    applied = await apply_migrations(database_url)
    assert "0002" in applied
    assert "create_generation.sql" in applied
    assert await schema_drift(admin) == []
    cur = await admin.execute("select version, checksum from app_migrations.applied order by 1")
    assert await cur.fetchall() == [(m.version, m.checksum) for m in load_migrations()]
    assert await balance(admin, user) == 40  # the data step gave nobody a second bonus
    assert await apply_migrations(database_url) == []


async def test_partly_migrated_old_database_is_told_how_to_reset(
    database_url: str, admin: AdminConn
) -> None:
    await _pretend_migrated_with_old_files(admin, ["0001", "0002", "0003"])
    with pytest.raises(ConfigurationError, match=r"partly migrated.*rm -rf \.local/pgdata"):
        await apply_migrations(database_url)


async def test_failed_upgrade_of_an_old_database_changes_nothing(
    database_url: str, admin: AdminConn, tmp_path: Path, definitions: Path
) -> None:
    shutil.copytree(MIGRATIONS_DIR / "definitions", definitions, dirs_exist_ok=True)
    (definitions / "broken.sql").write_text("select 1 / 0;")
    await _pretend_migrated_with_old_files(admin, sorted(LEGACY_CHECKSUMS))
    with pytest.raises(ConfigurationError, match=r"broken\.sql"):
        await apply_migrations(database_url, tmp_path)
    kept = await _one_row(admin, "select count(*) from app_migrations.applied where name = 'old'")
    assert kept == (8,)  # every old record still there
    assert await schema_drift(admin) == []
