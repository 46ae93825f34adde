"""The Supabase emulator's Auth (JWKS, admin user deletion) and its fault knobs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest

from local.configs import mint_local_token
from local.secrets import LocalSecrets
from tests.support import AdminConn, create_user


@pytest.fixture
async def supabase(supabase_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=supabase_url, timeout=10) as client:
        yield client


def bearer(secrets: LocalSecrets, token: str) -> dict[str, str]:
    return {"apikey": secrets.service_role_key, "Authorization": f"Bearer {token}"}


async def test_jwks_publishes_the_local_es256_key_without_an_apikey(
    supabase: httpx.AsyncClient, local_secrets: LocalSecrets
) -> None:
    response = await supabase.get("/auth/v1/.well-known/jwks.json")
    assert response.status_code == 200
    (key,) = response.json()["keys"]
    assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("EC", "P-256", "ES256", "sig")
    assert key["kid"] == local_secrets.jwt_key_id
    assert "d" not in key  # never the private part
    token = mint_local_token(local_secrets, uuid.uuid4(), "supabase")
    claims = jwt.decode(token, jwt.PyJWK(key), algorithms=["ES256"], audience="authenticated")
    assert claims["role"] == "authenticated"


@pytest.mark.parametrize("supabase_config_overrides", [{"signing_key_pem": None}])
async def test_a_legacy_secret_project_serves_an_empty_jwks(supabase: httpx.AsyncClient) -> None:
    response = await supabase.get("/auth/v1/.well-known/jwks.json")
    assert response.json() == {"keys": []}


async def test_admin_deletes_the_user_and_our_row_stays_without_personal_data(
    supabase: httpx.AsyncClient, local_secrets: LocalSecrets, admin: AdminConn
) -> None:
    user_id = await create_user(admin)
    headers = bearer(local_secrets, local_secrets.service_role_key)
    response = await supabase.delete(f"/auth/v1/admin/users/{user_id}", headers=headers)
    assert (response.status_code, response.json()) == (200, {})
    cur = await admin.execute("select count(*) from auth.users where id = %s", (user_id,))
    assert await cur.fetchone() == (0,)
    # Our row stays for the books (ledger, purchases), forgotten: no email, marked deleted.
    cur = await admin.execute(
        "select email, deleted_at is not null from public.users where id = %s", (user_id,)
    )
    assert await cur.fetchone() == (None, True)
    again = await supabase.delete(f"/auth/v1/admin/users/{user_id}", headers=headers)
    assert (again.status_code, again.json()["error_code"]) == (404, "user_not_found")


async def test_admin_deletion_needs_a_service_role_token(
    supabase: httpx.AsyncClient, local_secrets: LocalSecrets, admin: AdminConn
) -> None:
    user_id = await create_user(admin)
    as_user = mint_local_token(local_secrets, user_id, "supabase")
    refused = await supabase.delete(
        f"/auth/v1/admin/users/{user_id}", headers=bearer(local_secrets, as_user)
    )
    assert (refused.status_code, refused.json()["error_code"]) == (403, "not_admin")
    forged = jwt.encode({"role": "service_role"}, "f" * 40, algorithm="HS256")
    bad = await supabase.delete(
        f"/auth/v1/admin/users/{user_id}", headers=bearer(local_secrets, forged)
    )
    assert (bad.status_code, bad.json()["error_code"]) == (401, "bad_jwt")
    no_key = await supabase.delete(
        f"/auth/v1/admin/users/{user_id}",
        headers={"Authorization": f"Bearer {local_secrets.service_role_key}"},
    )
    assert no_key.status_code == 401
    cur = await admin.execute("select count(*) from auth.users where id = %s", (user_id,))
    assert await cur.fetchone() == (1,)


async def test_faults_are_set_at_run_time_and_validated(supabase: httpx.AsyncClient) -> None:
    assert (await supabase.get("/__emulator/faults")).json()["error_rate"] == 0.0
    changed = await supabase.post("/__emulator/faults", json={"gateway_error_rate": 1.0})
    assert changed.json()["gateway_error_rate"] == 1.0
    page = await supabase.get("/auth/v1/.well-known/jwks.json")
    assert page.status_code == 502
    assert page.headers["content-type"].startswith("text/html")
    refused = await supabase.post("/__emulator/faults", json={"error_rate": 2})
    assert refused.status_code == 422
    await supabase.post("/__emulator/reset")
    assert (await supabase.get("/auth/v1/.well-known/jwks.json")).status_code == 200


async def test_faults_apply_only_under_their_path_prefix(supabase: httpx.AsyncClient) -> None:
    await supabase.post("/__emulator/faults", json={"drop_rate": 1.0, "path_prefix": "/rest/"})
    assert (await supabase.get("/auth/v1/.well-known/jwks.json")).status_code == 200
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):  # closed mid-answer
        await supabase.post("/rest/v1/rpc/get_credits", json={})
