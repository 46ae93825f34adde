"""Error translation and both transports: psycopg, and supabase-py against the emulated
PostgREST (local.supabase), over the same real database."""

from __future__ import annotations

import re
import socket
import uuid

import httpx
import jwt
import pytest
from postgrest import AsyncPostgrestClient

from local.secrets import LocalSecrets
from shared.core import errors
from shared.db.calls import sql_args
from shared.db.migrate import MIGRATIONS_DIR
from shared.db.rpc import SQLSTATE_ERRORS, Applied, Rpc, SupabaseTransport, Update, translate
from shared.db.transports import RpcArg
from tests.support import AdminConn, create_user, new_generation


def test_every_sqlstate_raised_in_migrations_has_a_mapping() -> None:
    raised: set[str] = set()
    for path in MIGRATIONS_DIR.rglob("*.sql"):  # versioned files and definitions/
        raised |= set(re.findall(r"errcode\s*=\s*'([0-9A-Z]{5})'", path.read_text()))
    assert raised, "no SQLSTATE found: the pattern is broken"
    assert raised <= set(SQLSTATE_ERRORS), f"unmapped: {raised - set(SQLSTATE_ERRORS)}"


def test_a_methods_parameters_are_passed_as_its_sql_functions_p_arguments() -> None:
    generation_id = uuid.uuid4()

    def claim_copy(self: object, generation_id: uuid.UUID, *, lease_s: int) -> dict[str, RpcArg]:
        return sql_args(locals())

    assert claim_copy(object(), generation_id, lease_s=30) == {
        "p_generation_id": generation_id,
        "p_lease_s": 30,
    }


def test_translate_carries_detail_fields() -> None:
    err = translate("WN402", "insufficient credits", '{"balance": 5, "required": 10}')
    assert isinstance(err, errors.InsufficientCredits)
    assert err.body() == {
        "balance": 5,
        "required": 10,
        "detail": err.detail,
        "code": "insufficient_credits",
    }


def test_unknown_sqlstate_is_an_internal_error() -> None:
    err = translate("XX000", "boom", None)
    assert type(err) is errors.AppError
    assert err.status == 500
    assert "boom" not in err.detail  # internals never reach a caller


# --- the Supabase transport: the real supabase-py client against the emulated PostgREST ------


async def test_supabase_transport_calls_functions_by_named_arguments(
    supabase_rpc: Rpc, rpc: Rpc, admin: AdminConn
) -> None:
    user_id = await create_user(admin, credits=100)
    created = await supabase_rpc.create_generation(
        new_generation(user_id, params={"seed": 7}, idempotency_key="k-1"), max_active=3
    )
    assert (created.created, created.balance) == (True, 90)
    assert created.generation.params == {"seed": 7}
    applied = await supabase_rpc.mark_submitted(created.generation.id, "job-1")
    assert applied.changed
    assert applied.generation.job_id == "job-1"
    # The same row, as the direct transport reads it.
    assert await rpc.get_generation(user_id, created.generation.id) == applied.generation


async def test_supabase_transport_sends_a_batch_as_one_json_array(
    supabase_rpc: Rpc, admin: AdminConn
) -> None:
    user_id = await create_user(admin, credits=100)
    created = await supabase_rpc.create_generation(new_generation(user_id), max_active=3)
    ours, unknown = created.generation.id, uuid.uuid4()
    outcomes = await supabase_rpc.apply_predictions(
        [Update(ours, "processing", job_id="job-1", progress=30), Update(unknown, "canceled")]
    )
    applied, missing = outcomes
    assert isinstance(applied, Applied)
    assert (applied.generation.id, applied.generation.progress) == (ours, 30)
    assert isinstance(missing, errors.NotFound)


async def test_supabase_transport_translates_postgrest_error_body(
    supabase_rpc: Rpc, admin: AdminConn
) -> None:
    user_id = await create_user(admin, credits=3)
    with pytest.raises(errors.InsufficientCredits) as caught:
        await supabase_rpc.create_generation(new_generation(user_id), max_active=3)
    assert caught.value.extra == {"balance": 3, "required": 10}


async def test_supabase_transport_network_failure_is_database_unavailable(
    local_secrets: LocalSecrets,
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    rpc = Rpc(await SupabaseTransport.open(url, local_secrets.service_role_key))
    try:
        with pytest.raises(errors.DatabaseUnavailable):
            await rpc.get_generation(uuid.uuid4(), uuid.uuid4())
    finally:
        await rpc.aclose()


async def set_faults(supabase_url: str, **knobs: object) -> None:
    async with httpx.AsyncClient(base_url=supabase_url) as client:
        response = await client.post("/__emulator/faults", json=knobs)
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "knobs",
    [
        {"error_rate": 1.0, "error_status": 503},  # PostgREST's own 5xx (PGRST000)
        {"error_rate": 1.0, "error_status": 500},
        {"gateway_error_rate": 1.0, "gateway_status": 502},  # a proxy's HTML page
        {"gateway_error_rate": 1.0, "gateway_status": 504},
        {"drop_rate": 1.0},  # the connection closes mid-answer
    ],
)
async def test_postgrest_or_gateway_failure_is_database_unavailable(
    supabase_rpc: Rpc, supabase_url: str, knobs: dict[str, object]
) -> None:
    await set_faults(supabase_url, **knobs)
    with pytest.raises(errors.DatabaseUnavailable):
        await supabase_rpc.get_generation(uuid.uuid4(), uuid.uuid4())


async def test_a_pgrst_error_is_database_unavailable(
    supabase_url: str, local_secrets: LocalSecrets
) -> None:
    # A key the project does not know is refused (PGRST301): our deployment's fault, a 503.
    stranger = jwt.encode({"role": "service_role"}, "s" * 40, algorithm="HS256")
    client = await SupabaseTransport.open(supabase_url, local_secrets.service_role_key)
    client._client.auth(stranger)
    try:
        with pytest.raises(errors.DatabaseUnavailable):
            await client.call("get_credits", {"p_user_id": uuid.uuid4(), "p_limit": 1})
        with pytest.raises(errors.DatabaseUnavailable):  # PGRST202: not deployed
            await client.call("no_such_function", {})
    finally:
        await client.aclose()


async def test_a_2xx_that_is_not_json_rows_is_database_unavailable() -> None:
    # A captive portal or a misrouted proxy: 200, but HTML (fake HTTP at the transport only).
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>Welcome</html>")

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = AsyncPostgrestClient("https://project.supabase.test/rest/v1", http_client=http)
    rpc = Rpc(SupabaseTransport(client, http))
    try:
        with pytest.raises(errors.DatabaseUnavailable):
            await rpc.get_generation(uuid.uuid4(), uuid.uuid4())
    finally:
        await rpc.aclose()


# --- both transports: the same SQLSTATE, the same domain error ----------------------------


@pytest.fixture
async def raiser(admin: AdminConn) -> None:
    """public.raise_code(code, message, detail): raises exactly that, callable by the API."""
    await admin.execute(
        """
        create function public.raise_code(p_code text, p_message text, p_detail text)
        returns table (ok boolean) language plpgsql as $$
        begin
          raise exception using errcode = p_code, message = p_message,
                                detail = coalesce(p_detail, '');
        end $$;
        grant execute on function public.raise_code(text, text, text) to service_role;
        create sequence public.flaky_calls;
        grant usage on sequence public.flaky_calls to service_role;
        create function public.flaky(p_code text, p_failures integer)
        returns table (calls bigint) language plpgsql as $$
        declare n bigint := nextval('public.flaky_calls');  -- not rolled back with the call
        begin
          if n <= p_failures then
            raise exception 'emulated %', p_code using errcode = p_code;
          end if;
          calls := n;
          return next;
        end $$;
        grant execute on function public.flaky(text, integer) to service_role;
        """
    )


DETAILS = {"WN402": '{"balance": 3, "required": 10}', "WN404": '{"entity": "user"}',
           "WN412": '{"status": "completed"}', "WN429": '{"limit": 3}'}  # fmt: skip


@pytest.mark.parametrize("sqlstate", sorted(SQLSTATE_ERRORS))
async def test_every_sqlstate_is_the_same_domain_error_through_both_transports(
    rpc: Rpc, supabase_rpc: Rpc, raiser: None, sqlstate: str
) -> None:
    args: dict[str, RpcArg] = {
        "p_code": sqlstate,
        "p_message": "something specific went wrong",
        "p_detail": DETAILS.get(sqlstate),
    }
    seen: list[errors.AppError] = []
    for transport in (rpc.transport, supabase_rpc.transport):
        with pytest.raises(errors.AppError) as caught:
            await transport.call("raise_code", args)
        seen.append(caught.value)
    direct, supabase = seen
    assert type(direct) is SQLSTATE_ERRORS[sqlstate][0]
    assert type(supabase) is type(direct)
    assert (supabase.detail, supabase.extra, supabase.status) == (
        direct.detail,
        direct.extra,
        direct.status,
    )


@pytest.mark.parametrize("sqlstate", ["40001", "40P01"])
async def test_serialization_failure_or_deadlock_is_retried_once(
    rpc: Rpc, supabase_rpc: Rpc, raiser: None, sqlstate: str
) -> None:
    first = await rpc.transport.call("flaky", {"p_code": sqlstate, "p_failures": 1})
    assert first == [{"calls": 2}]  # failed once, then the retry ran
    second = await supabase_rpc.transport.call("flaky", {"p_code": sqlstate, "p_failures": 3})
    assert second == [{"calls": 4}]  # call 3 failed, its retry (call 4) succeeded
    for transport in (rpc.transport, supabase_rpc.transport):
        with pytest.raises(errors.DatabaseUnavailable):  # twice in a row: not retried again
            await transport.call("flaky", {"p_code": sqlstate, "p_failures": 1000})
    assert await rpc.transport.call("flaky", {"p_code": sqlstate, "p_failures": 0}) == [
        {"calls": 9}  # 4 + two failed attempts by each transport + this call
    ]


async def test_postgres_transport_unreachable_is_database_unavailable(tmp_path: object) -> None:
    from shared.db.rpc import PostgresTransport

    with pytest.raises(errors.DatabaseUnavailable):
        await PostgresTransport.open(
            "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1", open_timeout_s=0.5
        )


async def test_a_query_past_the_statement_timeout_is_database_unavailable(
    database_url: str, admin: object
) -> None:
    import psycopg

    from shared.db.rpc import PostgresTransport

    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(
            "create function public.slow() returns table (x int) language sql"
            " as $$ select 1 from pg_sleep(2) $$"
        )
        await conn.execute("grant execute on function public.slow() to service_role")
    transport = await PostgresTransport.open(
        database_url, role="service_role", statement_timeout_ms=100
    )
    try:
        with pytest.raises(errors.DatabaseUnavailable):
            await transport.call("slow", {})
    finally:
        await transport.aclose()


async def test_supabase_transport_sends_many_reads_as_two_id_arrays(
    supabase_rpc: Rpc, rpc: Rpc, admin: AdminConn
) -> None:
    user_id = await create_user(admin, credits=100)
    created = await supabase_rpc.create_generation(new_generation(user_id), max_active=3)
    ours = created.generation.id
    reads = [(user_id, ours), (user_id, uuid.uuid4()), (uuid.uuid4(), ours)]
    answers = await supabase_rpc.read_generations(reads, poll_after_s=60, max_polls=3)
    assert answers[0] == (await rpc.get_generation(user_id, ours), False)
    assert all(isinstance(a, errors.NotFound) for a in answers[1:])
