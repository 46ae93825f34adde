"""Installing into a Supabase project that already has sign-ups, or tables of its own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest

from local.database import bootstrap, create_database, drop_database, with_database
from shared.core.errors import ConfigurationError
from shared.db.migrate import apply_migrations
from tests.support import assert_ledger_invariants


@pytest.fixture
async def bare_url(server_url: str) -> AsyncIterator[str]:
    """A database with only what Supabase provides (roles, auth), no migrations yet."""
    name = f"wan_bare_{uuid.uuid4().hex[:12]}"
    await create_database(server_url, name)
    url = with_database(server_url, name)
    try:
        await bootstrap(url)
        yield url
    finally:
        await drop_database(server_url, name)


async def _run(url: str, sql: str) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(sql.encode())
        return await cur.fetchall() if cur.description else []


async def test_users_signed_up_before_install_get_their_row_and_one_bonus(bare_url: str) -> None:
    # a: confirmed; b: never confirmed; z: anonymous. Only a gets the bonus at install.
    await _run(
        bare_url,
        "insert into auth.users (email, email_confirmed_at, is_anonymous) values"
        " ('a@x.test', now(), false), ('b@x.test', null, false), (null, null, true)",
    )
    await apply_migrations(bare_url)
    await apply_migrations(bare_url)
    await _run(
        bare_url, "insert into auth.users (email, email_confirmed_at) values ('c@x.test', now())"
    )
    rows = await _run(
        bare_url,
        "select u.email, u.credits, count(t.*) from public.users u"
        " left join public.credit_transactions t on t.user_id = u.id and t.type = 'signup_bonus'"
        " group by u.email, u.credits order by u.email nulls last",
    )
    assert rows == [
        ("a@x.test", 100, 1),
        ("b@x.test", 0, 0),
        ("c@x.test", 100, 1),
        (None, 0, 0),
    ]
    async with await psycopg.AsyncConnection.connect(bare_url, autocommit=True) as conn:
        await assert_ledger_invariants(conn)


@pytest.mark.parametrize("table", ["users", "generations"])
async def test_foreign_table_of_the_same_name_stops_the_migration_with_what_to_do(
    bare_url: str, table: str
) -> None:
    await _run(bare_url, f"create table public.{table} (id bigint primary key, name text)")
    with pytest.raises(ConfigurationError) as caught:
        await apply_migrations(bare_url)
    message = str(caught.value)
    assert f"public.{table} already exist" in message
    assert "set schema backup" in message
    assert "wanctl migrate again" in message
    # Nothing of ours was left half made, and the foreign table is untouched.
    assert await _run(bare_url, "select to_regclass('public.credit_transactions')") == [(None,)]
    columns = await _run(
        bare_url,
        "select column_name from information_schema.columns"
        f" where table_schema = 'public' and table_name = '{table}' order by 1",
    )
    assert columns == [("id",), ("name",)]
