"""Local-stack users: signed up through auth.users so the signup trigger runs, as on Supabase."""

from __future__ import annotations

import uuid

from shared.core.errors import NotFound


async def create_user(
    conninfo: str, email: str, *, credits: int | None = None, confirmed: bool = True
) -> uuid.UUID:
    """Insert into auth.users, confirmed unless told otherwise (the trigger grants the signup
    bonus to confirmed users only); optionally set the balance with one add_credits adjustment,
    so the ledger explains every credit."""
    import psycopg

    async with (
        await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn,
        conn.transaction(),
    ):
        cur = await conn.execute(
            "insert into auth.users (email, email_confirmed_at)"
            " values (%s, case when %s then now() end) returning id",
            (email, confirmed),
        )
        row = await cur.fetchone()
        assert row is not None
        user_id = row[0]
        assert isinstance(user_id, uuid.UUID)
        if credits is not None:
            # The difference is taken in the same SQL statement that adds it (no balance read
            # into Python); a user just made has nothing else moving its balance meanwhile.
            await conn.execute(
                "select public.add_credits(u.id, %s - u.credits, 'adjustment', 'Starting balance')"
                "  from public.users u where u.id = %s and u.credits <> %s",
                (credits, user_id, credits),
            )
    return user_id


async def find_user(conninfo: str, user: str) -> tuple[uuid.UUID, str | None]:
    """A user by id or email."""
    import psycopg

    try:
        key: uuid.UUID | None = uuid.UUID(user)
    except ValueError:
        key = None
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        if key is not None:
            cur = await conn.execute("select id, email from public.users where id = %s", (key,))
        else:
            cur = await conn.execute(
                "select id, email from public.users where lower(email) = lower(%s)", (user,)
            )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"No user {user!r}.")
    user_id, email = row
    assert isinstance(user_id, uuid.UUID)
    return user_id, None if email is None else str(email)
