"""Error translation and the Supabase transport (fake HTTP at the transport only)."""

from __future__ import annotations

import json
import re
import uuid

import httpx
import pytest
from supabase import AsyncClient, AsyncClientOptions

from shared.core import errors
from shared.db.migrate import MIGRATIONS_DIR
from shared.db.rpc import SQLSTATE_ERRORS, Applied, Rpc, SupabaseTransport, Update, translate
from tests.support import new_generation

GENERATION = {
    "id": str(uuid.uuid4()),
    "user_id": str(uuid.uuid4()),
    "kind": "t2v",
    "model": "t2v-14B",
    "resolution": "480p",
    "prompt": "a dog on a skateboard",
    "params": {},
    "cost": 10,
    "status": "queued",
    "progress": 0,
    "created_at": "2026-11-24T10:00:00+00:00",
    "updated_at": "2026-11-24T10:00:00+00:00",
}


def test_every_sqlstate_raised_in_migrations_has_a_mapping() -> None:
    raised: set[str] = set()
    for path in MIGRATIONS_DIR.rglob("*.sql"):  # versioned files and definitions/
        raised |= set(re.findall(r"errcode\s*=\s*'([0-9A-Z]{5})'", path.read_text()))
    assert raised, "no SQLSTATE found: the pattern is broken"
    assert raised <= set(SQLSTATE_ERRORS), f"unmapped: {raised - set(SQLSTATE_ERRORS)}"


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


def make_client(handler: httpx.MockTransport) -> Rpc:
    http = httpx.AsyncClient(transport=handler)
    options = AsyncClientOptions(httpx_client=http)
    client = AsyncClient("https://project.supabase.test", "service-role-key", options=options)
    return Rpc(SupabaseTransport(client))


async def test_supabase_transport_posts_named_arguments_to_rpc_endpoint() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[{"generation": GENERATION, "changed": True}])

    rpc = make_client(httpx.MockTransport(handler))
    gen_id = uuid.UUID(GENERATION["id"])  # type: ignore[arg-type]
    applied = await rpc.mark_submitted(gen_id, "job-1")
    assert applied.changed
    assert applied.generation.id == gen_id
    (request,) = seen
    assert request.method == "POST"
    assert request.url.path == "/rest/v1/rpc/mark_submitted"
    assert request.headers["apikey"] == "service-role-key"
    assert json.loads(request.content) == {"p_generation_id": str(gen_id), "p_job_id": "job-1"}


async def test_supabase_transport_sends_a_batch_as_one_json_array() -> None:
    seen: list[httpx.Request] = []
    ours, unknown = uuid.UUID(str(GENERATION["id"])), uuid.uuid4()

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            json=[  # rows come back in generation order; idx says which update each answers
                {"idx": 1, "generation": None, "changed": False, "refunded": 0,
                 "error_code": "WN404", "error_message": "generation not found"},
                {"idx": 0, "generation": GENERATION, "changed": True, "refunded": 0,
                 "error_code": None, "error_message": None},
            ],
        )  # fmt: skip

    rpc = make_client(httpx.MockTransport(handler))
    outcomes = await rpc.apply_predictions(
        [Update(ours, "processing", job_id="job-1", progress=30), Update(unknown, "canceled")]
    )
    applied, missing = outcomes
    assert isinstance(applied, Applied)
    assert applied.generation.id == ours
    assert isinstance(missing, errors.NotFound)
    (request,) = seen
    assert request.url.path == "/rest/v1/rpc/apply_predictions"
    assert json.loads(request.content) == {
        "p_updates": [
            {"generation_id": str(ours), "status": "processing", "job_id": "job-1",
             "progress": 30, "video_url": None, "error": None, "source": None,
             "predict_time": None},
            {"generation_id": str(unknown), "status": "canceled", "job_id": None,
             "progress": None, "video_url": None, "error": None, "source": None,
             "predict_time": None},
        ]
    }  # fmt: skip


async def test_supabase_transport_translates_postgrest_error_body() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400,
            json={
                "code": "WN402",
                "message": "insufficient credits",
                "details": '{"balance": 3, "required": 10}',
                "hint": None,
            },
        )

    rpc = make_client(httpx.MockTransport(handler))
    with pytest.raises(errors.InsufficientCredits) as caught:
        await rpc.create_generation(new_generation(uuid.uuid4()), max_active=3)
    assert caught.value.extra == {"balance": 3, "required": 10}


async def test_supabase_transport_network_failure_is_database_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    rpc = make_client(httpx.MockTransport(handler))
    with pytest.raises(errors.DatabaseUnavailable):
        await rpc.get_generation(uuid.uuid4(), uuid.uuid4())


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
