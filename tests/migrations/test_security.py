"""Row-level security and EXECUTE grants, acting as Supabase's API roles."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from shared.db.rpc import Rpc
from tests.support import AdminConn, acting_as, create_user, new_generation

SERVICE_FUNCTIONS = [
    "create_generation",
    "mark_submitted",
    "apply_prediction",
    "apply_predictions",
    "fail_submission",
    "request_cancel",
    "claim_stale_generations",
    "claim_pending_copies",
    "claim_copy",
    "record_copy_failure",
    "set_video_path",
    "get_generation",
    "read_generation",
    "read_generations",
    "list_generations",
    "get_credits",
    "deduct_credits",
    "add_credits",
    "refund_credits",
    # guardrails (issue 14)
    "delete_generation",
    "delete_account",
    "claim_expired_media",
    "release_media",
    "configure_guardrails",
    "operator_stats",
    # payments
    "create_purchase",
    "attach_checkout_session",
    "apply_stripe_event",
    "apply_unmatched_stripe_events",
    "settle_purchase",
    "claim_pending_purchases",
    "list_purchases",
    "lift_hold",
]


async def seed_two_users(rpc: Rpc, admin: AdminConn) -> tuple[uuid.UUID, uuid.UUID]:
    alice = await create_user(admin)
    bob = await create_user(admin)
    for user in (alice, bob):
        new = new_generation(user, prompt="a robot painting a portrait")
        await rpc.create_generation(new, max_active=3)
    return alice, bob


async def test_user_sees_only_own_rows(rpc: Rpc, admin: AdminConn) -> None:
    alice, _ = await seed_two_users(rpc, admin)
    async with acting_as(admin, "authenticated", alice):
        for table, column in [
            ("users", "id"),
            ("generations", "user_id"),
            ("credit_transactions", "user_id"),
        ]:
            cur = await admin.execute(f"select distinct {column} from public.{table}")
            assert await cur.fetchall() == [(alice,)], table


async def test_anon_sees_nothing(rpc: Rpc, admin: AdminConn) -> None:
    await seed_two_users(rpc, admin)
    for table in ("users", "generations", "credit_transactions"):
        async with acting_as(admin, "anon"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await admin.execute(f"select * from public.{table}")


async def test_user_cannot_write_tables(rpc: Rpc, admin: AdminConn) -> None:
    alice, _ = await seed_two_users(rpc, admin)
    async with acting_as(admin, "authenticated", alice):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await admin.execute("update public.users set credits = 1000000 where id = %s", (alice,))


@pytest.mark.parametrize("role", ["anon", "authenticated"])
@pytest.mark.parametrize("function", SERVICE_FUNCTIONS)
async def test_api_roles_cannot_execute_service_functions(
    admin: AdminConn, role: str, function: str
) -> None:
    user = await create_user(admin)
    cur = await admin.execute(
        "select p.oid::regprocedure::text,"
        " array(select format_type(t, null) from unnest(p.proargtypes) as t)"
        " from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname = 'public' and p.proname = %s",
        (function,),
    )
    row = await cur.fetchone()
    assert row is not None, f"{function} does not exist"
    signature, arg_types = row
    assert isinstance(arg_types, list)
    nulls = ", ".join(f"null::{t}" for t in arg_types)
    async with acting_as(admin, role, user):
        cur = await admin.execute(
            "select has_function_privilege(current_user, %s::regprocedure, 'execute')",
            (signature,),
        )
        assert await cur.fetchone() == (False,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
            await admin.execute(f"select * from public.{function}({nulls})")
        assert caught.value.sqlstate == "42501"


async def test_service_functions_are_hardened(admin: AdminConn) -> None:
    cur = await admin.execute(
        """
        select p.proname, p.prosecdef, p.provolatile, p.proconfig
          from pg_proc p join pg_namespace n on n.oid = p.pronamespace
         where n.nspname = 'public' and p.proname = any(%s)
        """,
        (SERVICE_FUNCTIONS,),
    )
    rows = await cur.fetchall()
    assert {r[0] for r in rows} == set(SERVICE_FUNCTIONS)
    cur = await admin.execute(
        "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname = 'public'"
    )
    every = {r[0] for r in await cur.fetchall()}
    assert every == set(SERVICE_FUNCTIONS), "a public function is missing from this test"
    for name, secdef, volatility, config in rows:
        assert secdef, f"{name} is not SECURITY DEFINER"
        assert config == ['search_path=""'], f"{name} has search_path {config}"
        if name not in (
            "get_generation",
            "list_generations",
            "get_credits",
            "operator_stats",
            "list_purchases",
        ):
            assert volatility == "v", f"{name} is not VOLATILE"


WRITES = [
    "insert into public.users (id, email) values (gen_random_uuid(), 'x@example.test')",
    "update public.users set credits = 1000000",
    "delete from public.users",
    "truncate public.users cascade",
    "insert into public.credit_transactions (user_id, amount, type) "
    "select id, 500, 'bonus' from public.users",
    "update public.credit_transactions set amount = 1000",
    "delete from public.credit_transactions",
    "truncate public.credit_transactions",
    "update public.generations set status = 'completed', video_path = 'x'",
    "delete from public.generations",
    "truncate public.generations cascade",
    # payments: only the payment functions write purchases and the Stripe event record
    "insert into public.purchases (user_id, pack_id, credits, amount, currency) "
    "select id, 'small', 100, 500, 'usd' from public.users",
    "update public.purchases set status = 'paid'",
    "delete from public.purchases",
    "truncate public.purchases cascade",
    "insert into public.stripe_events (id, type, outcome) values ('evt_x', 'x', 'ignored')",
    "update public.stripe_events set outcome = 'granted'",
    "delete from public.stripe_events",
]


@pytest.mark.parametrize("statement", WRITES)
async def test_service_role_cannot_write_tables_directly(
    rpc: Rpc, admin: AdminConn, statement: str
) -> None:
    await seed_two_users(rpc, admin)
    async with acting_as(admin, "service_role"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await admin.execute(statement)


async def test_service_role_still_reads_tables(rpc: Rpc, admin: AdminConn) -> None:
    await seed_two_users(rpc, admin)
    async with acting_as(admin, "service_role"):
        cur = await admin.execute("select count(*), sum(credits) from public.users")
        assert await cur.fetchone() == (2, 180)


INTERNAL_COLUMNS = [
    *(("generations", c) for c in ("request_hash", "job_id", "video_url", "last_polled_at",
                                   "poll_attempts", "copy_error")),
    *(("purchases", c) for c in ("session_id", "checkout_url", "payment_intent",
                                 "idempotency_key", "review_reason", "check_attempts")),
]  # fmt: skip


@pytest.mark.parametrize(("table", "column"), INTERNAL_COLUMNS)
async def test_user_cannot_read_internal_columns(
    rpc: Rpc, admin: AdminConn, table: str, column: str
) -> None:
    alice, _ = await seed_two_users(rpc, admin)
    async with acting_as(admin, "authenticated", alice):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await admin.execute(f"select {column} from public.{table}")


async def test_user_reads_the_public_columns_of_own_generations(rpc: Rpc, admin: AdminConn) -> None:
    alice, _ = await seed_two_users(rpc, admin)
    async with acting_as(admin, "authenticated", alice):
        cur = await admin.execute(
            "select user_id, status, cost, prompt, progress, video_path from public.generations"
        )
        assert await cur.fetchall() == [
            (alice, "queued", 10, "a robot painting a portrait", 0, None)
        ]


async def test_nobody_but_the_service_reads_stripe_events(rpc: Rpc, admin: AdminConn) -> None:
    alice, _ = await seed_two_users(rpc, admin)
    for role in ("anon", "authenticated"):
        async with acting_as(admin, role, alice if role == "authenticated" else None):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await admin.execute("select id from public.stripe_events")
    async with acting_as(admin, "service_role"):
        await admin.execute("select id, outcome from public.stripe_events")
