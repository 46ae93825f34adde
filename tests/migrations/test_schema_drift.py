"""The database's catalog is what migrations/definitions/ says, and every difference is named."""

from __future__ import annotations

from shared.db.drift import schema_drift
from tests.support import AdminConn

HARDENED = "language sql security definer set search_path = ''"


async def test_catalog_matches_the_definition_files(admin: AdminConn) -> None:
    assert await schema_drift(admin) == []


async def test_planted_extra_function_is_reported(admin: AdminConn) -> None:
    await admin.execute(
        f"create function public.planted() returns int {HARDENED} as $$ select 1 $$"
    )
    await admin.execute("revoke all on function public.planted() from public, anon, authenticated")
    assert await schema_drift(admin) == [
        "function public.planted has no definition file (drop it, or add its file)"
    ]


async def test_left_over_private_helper_is_reported(admin: AdminConn) -> None:
    await admin.execute(
        f"create function private.status_rank(text) returns int {HARDENED} as $$ select 0 $$"
    )
    assert await schema_drift(admin) == [
        "function private.status_rank has no definition file (drop it, or add its file)"
    ]


async def test_stale_overload_is_reported(admin: AdminConn) -> None:
    await admin.execute(
        "create function public.get_credits(p_user_id uuid) returns table (balance integer, "
        f"transactions jsonb) {HARDENED} as $$ select 0, '[]'::jsonb $$"
    )
    await admin.execute(
        "revoke all on function public.get_credits(uuid) from public, anon, authenticated"
    )
    problems = await schema_drift(admin)
    assert "function public.get_credits has more than one overload (drop the stale signature)" in (
        problems
    )


async def test_function_changed_by_hand_is_reported(admin: AdminConn) -> None:
    await admin.execute(
        "create or replace function public.get_generation(p_user_id uuid, p_generation_id uuid) "
        "returns table (generation jsonb) language plpgsql stable security definer "
        "set search_path = '' as $$ begin return; end $$"
    )
    assert await schema_drift(admin) == [
        "function public.get_generation differs from its definition file"
    ]


async def test_execute_granted_to_an_api_role_is_reported(admin: AdminConn) -> None:
    await admin.execute("grant execute on function public.get_credits(uuid, integer) to anon")
    assert await schema_drift(admin) == ["function public.get_credits has the wrong EXECUTE grants"]


async def test_function_without_fixed_search_path_is_reported(admin: AdminConn) -> None:
    await admin.execute("alter function private.refund(uuid, text) reset search_path")
    assert await schema_drift(admin) == [
        "function private.refund must be SECURITY DEFINER with search_path = ''"
    ]


async def test_extra_trigger_and_policy_are_reported(admin: AdminConn) -> None:
    await admin.execute(
        "create trigger on_auth_user_again after insert on auth.users "
        "for each row execute function private.handle_new_user()"
    )
    await admin.execute(
        "create policy users_select_all on public.users for select to authenticated using (true)"
    )
    assert await schema_drift(admin) == [
        "trigger on_auth_user_again has no definition file",
        "policies on public.users are ['users_select_all', 'users_select_own'], "
        "but policies/users.sql says ['users_select_own']",
    ]


async def test_dropped_function_is_reported(admin: AdminConn) -> None:
    await admin.execute("drop function public.get_generation(uuid, uuid)")
    assert await schema_drift(admin) == [
        "public.get_generation is in a definition file but not in the database"
    ]


async def test_no_sql_function_carries_its_own_limit_default(admin: AdminConn) -> None:
    # Limits, intervals and caps come from settings through the caller: an integer parameter
    # may default to null (an optional value), never to a number of its own.
    cur = await admin.execute(
        """
        select p.proname, pg_get_function_arguments(p.oid)
          from pg_proc p join pg_namespace n on n.oid = p.pronamespace
         where n.nspname = 'public' and p.pronargdefaults > 0
        """
    )
    numeric_defaults = [
        f"{name}: {arg.strip()}"
        for name, args in await cur.fetchall()
        for arg in str(args).split(",")
        if " integer DEFAULT " in arg and not arg.strip().endswith("DEFAULT NULL::integer")
    ]
    assert numeric_defaults == []
