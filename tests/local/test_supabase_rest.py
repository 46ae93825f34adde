"""The Supabase emulator's PostgREST RPC, over HTTP, against the real embedded database."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest

from local.configs import mint_local_token
from local.secrets import LocalSecrets
from shared.db.rpc import Rpc
from tests.support import AdminConn, create_user

Json = dict[str, object]


@pytest.fixture
async def rest(supabase_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=supabase_url + "/rest/v1", timeout=10) as client:
        yield client


def service(secrets: LocalSecrets) -> dict[str, str]:
    key = secrets.service_role_key
    return {"apikey": key, "Authorization": f"Bearer {key}"}


def as_user(secrets: LocalSecrets, user_id: uuid.UUID) -> dict[str, str]:
    token = mint_local_token(secrets, user_id, "supabase")
    return {"apikey": secrets.anon_key, "Authorization": f"Bearer {token}"}


@pytest.fixture
async def probe(admin: AdminConn) -> None:
    """Functions of every return shape, callable by the API roles."""
    await admin.execute(
        """
        create function public.probe_claims() returns table (who text, claims jsonb, sub text)
        language sql as $$
          select current_user::text, current_setting('request.jwt.claims', true)::jsonb,
                 auth.uid()::text $$;
        create function public.probe_scalar(p_a integer, p_b integer default 10) returns integer
        language sql as $$ select p_a + p_b $$;
        create function public.probe_set(p_n integer) returns setof integer
        language sql as $$ select generate_series(1, p_n) $$;
        create function public.probe_void(p_x text) returns void
        language sql as $$ select null $$;
        create function public.probe_one_column(p_n integer) returns table (doc jsonb)
        language sql as $$ select jsonb_build_object('i', i) from generate_series(1, p_n) i $$;
        create function public.probe_rows(p_n integer) returns table (n integer, doc jsonb)
        language sql as $$ select i, jsonb_build_object('i', i) from generate_series(1, p_n) i $$;
        create function public.probe_types(p_id uuid, p_at timestamptz, p_doc jsonb,
                                           p_list jsonb, p_flag boolean)
        returns table (id uuid, at timestamptz, doc jsonb, list jsonb, flag boolean)
        language sql as $$ select p_id, p_at, p_doc, p_list, p_flag $$;
        """
    )


async def test_service_role_calls_run_as_service_role_with_the_claims(
    rest: httpx.AsyncClient, local_secrets: LocalSecrets, probe: None
) -> None:
    response = await rest.post("/rpc/probe_claims", json={}, headers=service(local_secrets))
    assert response.status_code == 200, response.text
    (row,) = response.json()
    assert row["who"] == "service_role"
    assert row["claims"]["role"] == "service_role"
    assert row["sub"] is None


async def test_user_token_runs_as_authenticated_with_auth_uid(
    rest: httpx.AsyncClient, local_secrets: LocalSecrets, probe: None
) -> None:
    user_id = uuid.uuid4()
    response = await rest.post(
        "/rpc/probe_claims", json={}, headers=as_user(local_secrets, user_id)
    )
    assert response.status_code == 200, response.text
    assert response.json() == [
        {"who": "authenticated", "claims": response.json()[0]["claims"], "sub": str(user_id)}
    ]


async def test_results_take_postgrest_shapes(
    rest: httpx.AsyncClient, local_secrets: LocalSecrets, probe: None
) -> None:
    headers = service(local_secrets)
    scalar = await rest.post("/rpc/probe_scalar", json={"p_a": 1}, headers=headers)
    assert (scalar.status_code, scalar.json()) == (200, 11)  # p_b's default applied
    assert (await rest.post("/rpc/probe_set", json={"p_n": 3}, headers=headers)).json() == [
        1,
        2,
        3,
    ]
    void = await rest.post("/rpc/probe_void", json={"p_x": "x"}, headers=headers)
    assert (void.status_code, void.content) == (204, b"")
    rows = await rest.post("/rpc/probe_rows", json={"p_n": 2}, headers=headers)
    assert rows.json() == [{"n": 1, "doc": {"i": 1}}, {"n": 2, "doc": {"i": 2}}]
    assert rows.headers["content-range"] == "0-1/*"
    one_column = await rest.post("/rpc/probe_one_column", json={"p_n": 1}, headers=headers)
    assert one_column.json() == [{"doc": {"i": 1}}]
    empty = await rest.post("/rpc/probe_rows", json={"p_n": 0}, headers=headers)
    assert empty.json() == []


async def test_json_arguments_are_converted_to_the_parameter_types(
    rest: httpx.AsyncClient, local_secrets: LocalSecrets, probe: None
) -> None:
    args: Json = {
        "p_id": str(uuid.uuid4()),
        "p_at": "2026-11-30T10:00:00+00:00",
        "p_doc": {"a": [1, 2]},
        "p_list": [{"x": 1}],
        "p_flag": True,
    }
    response = await rest.post("/rpc/probe_types", json=args, headers=service(local_secrets))
    assert response.status_code == 200, response.text
    (row,) = response.json()
    assert row["id"] == args["p_id"]
    assert row["at"].startswith("2026-11-30T10:00:00")
    assert (row["doc"], row["list"], row["flag"]) == ({"a": [1, 2]}, [{"x": 1}], True)


async def test_object_accept_header_asks_for_exactly_one_row(
    rest: httpx.AsyncClient, local_secrets: LocalSecrets, probe: None
) -> None:
    headers = {**service(local_secrets), "Accept": "application/vnd.pgrst.object+json"}
    one = await rest.post("/rpc/probe_rows", json={"p_n": 1}, headers=headers)
    assert one.json() == {"n": 1, "doc": {"i": 1}}
    two = await rest.post("/rpc/probe_rows", json={"p_n": 2}, headers=headers)
    assert (two.status_code, two.json()["code"]) == (406, "PGRST116")
    counted = await rest.post(
        "/rpc/probe_rows",
        json={"p_n": 2},
        headers={**service(local_secrets), "Prefer": "count=exact"},
    )
    assert counted.headers["content-range"] == "0-1/2"


@pytest.mark.parametrize(
    ("function", "args"),
    [
        ("no_such_function", {}),
        ("probe_scalar", {"p_wrong": 1}),  # an unknown argument name
        ("probe_scalar", {"p_b": 1}),  # p_a has no default
    ],
)
async def test_unknown_function_or_argument_names_is_pgrst202(
    rest: httpx.AsyncClient, local_secrets: LocalSecrets, probe: None, function: str, args: Json
) -> None:
    response = await rest.post(f"/rpc/{function}", json=args, headers=service(local_secrets))
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "PGRST202"
    assert set(body) == {"code", "message", "details", "hint"}
    assert f"public.{function}" in body["message"]


async def test_missing_execute_privilege_is_403_for_users_and_401_for_anon(
    rest: httpx.AsyncClient, local_secrets: LocalSecrets, admin: AdminConn
) -> None:
    user_id = await create_user(admin)
    args = {"p_user_id": str(user_id), "p_limit": 5}
    denied = await rest.post("/rpc/get_credits", json=args, headers=as_user(local_secrets, user_id))
    assert (denied.status_code, denied.json()["code"]) == (403, "42501")
    anon = {"apikey": local_secrets.anon_key, "Authorization": f"Bearer {local_secrets.anon_key}"}
    anonymous = await rest.post("/rpc/get_credits", json=args, headers=anon)
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "42501")
    allowed = await rest.post("/rpc/get_credits", json=args, headers=service(local_secrets))
    assert allowed.status_code == 200
    assert allowed.json()[0]["balance"] == 100


async def test_custom_sqlstate_is_400_in_postgrest_shape(
    rest: httpx.AsyncClient, local_secrets: LocalSecrets, admin: AdminConn
) -> None:
    user_id = await create_user(admin, credits=5)
    new = {"user_id": str(user_id), "kind": "t2v", "model": "t2v-14B", "resolution": "480p",
           "prompt": "a dog on a skateboard", "cost": 10}  # fmt: skip
    args = {"p_new": new, "p_max_active": 3, "p_rate_per_minute": None,
            "p_daily_budget_usd": None}  # fmt: skip
    response = await rest.post("/rpc/create_generation", json=args, headers=service(local_secrets))
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "WN402"
    assert json.loads(body["details"]) == {"balance": 5, "required": 10}
    assert set(body) == {"code", "message", "details", "hint"}


def _claims(role: str, **extra: object) -> Json:
    now = int(time.time())
    return {"role": role, "iat": now, "exp": now + 60, **extra}


@pytest.mark.parametrize(
    ("kind", "code"),
    [("garbage", "PGRST301"), ("other secret", "PGRST301"), ("expired", "PGRST303"),
     ("unknown kid", "PGRST301")],
)  # fmt: skip
async def test_bad_jwt_is_401(
    rest: httpx.AsyncClient, local_secrets: LocalSecrets, kind: str, code: str
) -> None:
    secret = local_secrets.jwt_secret
    token = {
        "garbage": "not-a-jwt",
        "other secret": jwt.encode(_claims("service_role"), "x" * 40, algorithm="HS256"),
        "expired": jwt.encode(_claims("service_role", exp=1), secret, algorithm="HS256"),
        "unknown kid": jwt.encode(
            _claims("service_role"),
            local_secrets.jwt_signing_key,
            algorithm="ES256",
            headers={"kid": "someone-else"},
        ),
    }[kind]
    headers = {"apikey": local_secrets.anon_key, "Authorization": f"Bearer {token}"}
    response = await rest.post("/rpc/get_credits", json={}, headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == code


async def test_a_role_outside_the_api_roles_is_refused(
    rest: httpx.AsyncClient, local_secrets: LocalSecrets
) -> None:
    # Signed with the project's secret, but asking for the superuser: the switch is denied.
    token = jwt.encode(_claims("postgres"), local_secrets.jwt_secret, algorithm="HS256")
    headers = {"apikey": local_secrets.anon_key, "Authorization": f"Bearer {token}"}
    response = await rest.post("/rpc/get_credits", json={}, headers=headers)
    assert (response.status_code, response.json()["code"]) == (403, "42501")


@pytest.mark.parametrize("apikey", [None, "not-our-key"])
async def test_gateway_wants_the_projects_apikey(
    rest: httpx.AsyncClient, local_secrets: LocalSecrets, apikey: str | None
) -> None:
    headers = {"Authorization": f"Bearer {local_secrets.service_role_key}"}
    if apikey is not None:
        headers["apikey"] = apikey
    response = await rest.post("/rpc/get_credits", json={}, headers=headers)
    assert response.status_code == 401
    assert "API key" in response.json()["message"]


async def test_non_object_body_is_pgrst102(
    rest: httpx.AsyncClient, local_secrets: LocalSecrets
) -> None:
    headers = {**service(local_secrets), "Content-Type": "application/json"}
    response = await rest.post("/rpc/get_credits", content=b"[1, 2", headers=headers)
    assert (response.status_code, response.json()["code"]) == (400, "PGRST102")


async def test_the_real_client_reads_through_the_emulator(
    supabase_rpc: Rpc, admin: AdminConn
) -> None:
    user_id = await create_user(admin, credits=42)
    balance, ledger = await supabase_rpc.get_credits(user_id, limit=5)
    assert balance == 42
    assert len(ledger) == 2  # the signup bonus and the test's adjustment
