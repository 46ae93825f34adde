"""Shared fixtures: one embedded PostgreSQL per test session, a fresh database per test.

The migrated schema is built once into a template database; each test gets its own copy
(CREATE DATABASE ... TEMPLATE, tens of milliseconds), so tests never see each other's rows.
After every test that used a database, the ledger invariants are checked.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from local.configs import supabase_emulator_config
from local.database import (
    create_database,
    drop_database,
    prepare,
    start_embedded,
    with_database,
)
from local.secrets import LocalSecrets, load_local_secrets
from local.serve import serve
from local.supabase.app import create_app as create_supabase_app
from shared.db.rpc import PostgresTransport, Rpc, SupabaseTransport
from tests.support import Clock, assert_ledger_invariants

TEMPLATE = "wan_test_template"


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """The admin URL of the session's server: DATABASE_URL if set, else the embedded one."""
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        yield external
        return
    server = start_embedded(Path(".local") / "test-pgdata")
    yield server.get_uri()


@pytest.fixture(scope="session")
def template_url(server_url: str) -> str:
    async def build() -> None:
        await drop_database(server_url, TEMPLATE)
        await create_database(server_url, TEMPLATE)
        await prepare(with_database(server_url, TEMPLATE))

    asyncio.run(build())
    return with_database(server_url, TEMPLATE)


@pytest.fixture
async def database_url(server_url: str, template_url: str) -> AsyncIterator[str]:
    """A fresh, migrated database for this test; invariants are checked when it ends."""
    name = f"wan_test_{uuid.uuid4().hex[:12]}"
    await create_database(server_url, name, template=TEMPLATE)
    url = with_database(server_url, name)
    try:
        yield url
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await assert_ledger_invariants(conn)
    finally:
        await drop_database(server_url, name)


@pytest.fixture
async def admin(database_url: str) -> AsyncIterator[psycopg.AsyncConnection[tuple[object, ...]]]:
    """A superuser connection to the test database, for setup and assertions."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
async def rpc(database_url: str) -> AsyncIterator[Rpc]:
    """The typed RPC facade over the Postgres transport, acting as service_role."""
    transport = await PostgresTransport.open(
        database_url, min_size=1, max_size=20, role="service_role"
    )
    client = Rpc(transport)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def clock() -> Clock:
    """A clock that stands still until the test moves it."""
    return Clock()


@pytest.fixture
def local_secrets(tmp_path: Path) -> LocalSecrets:
    """The local project's secrets (JWT secret, ES256 signing key, API keys), fresh per test."""
    return load_local_secrets(tmp_path / "secrets")


@pytest.fixture
def supabase_config_overrides() -> dict[str, object]:
    """Tests change the Supabase emulator's config by overriding this fixture."""
    return {"seed": 11}


@pytest.fixture
def supabase_url(
    database_url: str,
    local_secrets: LocalSecrets,
    supabase_config_overrides: dict[str, object],
    tmp_path: Path,
) -> Iterator[str]:
    """The Supabase emulator (PostgREST RPC, Auth, Storage with production's private bucket)
    over this test's database."""
    config = supabase_emulator_config(
        local_secrets, database_url, tmp_path / "supabase-storage", **supabase_config_overrides
    )
    with serve(create_supabase_app(config)) as url:
        yield url


@pytest.fixture
async def supabase_rpc(supabase_url: str, local_secrets: LocalSecrets) -> AsyncIterator[Rpc]:
    """The typed RPC facade over the real supabase-py client, through the emulator."""
    client = Rpc(await SupabaseTransport.open(supabase_url, local_secrets.service_role_key))
    try:
        yield client
    finally:
        await client.aclose()
