"""The local stack for end-to-end tests: the real API over HTTP, a fresh database, the emulator.

Each test gets its own database, emulator and API server (uvicorn threads on loopback), wired by
`local.stack.local_settings`, the same wiring `make dev` uses.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from local.configs import DevMode, mint_local_token, supabase_overrides
from local.devserver import create_app
from local.emulator import create_emulator_app
from local.emulator_faults import EmulatorConfig, Faults
from local.secrets import LocalSecrets
from local.serve import free_port, serve
from local.stack import local_settings
from local.supabase.storage import PREFIX as STORAGE_PREFIX
from local.supabase.storage import signed_path
from shared.core.config import Settings
from shared.storage.local import LocalStorage
from shared.wiring import SweepServices, open_storage, sweep_job
from tests.support import AdminConn, create_user

Json = dict[str, object]
SETTLE_S = 15.0


# The two configurations of the local stack (local.stack.DevMode). "direct" is every test's
# default; a test marked `@both_configs` also runs in production's shape ("supabase": RPC
# through the Supabase emulator's PostgREST, files in its Storage, ES256 tokens through its
# JWKS).
CONFIGS: tuple[DevMode, ...] = ("direct", "supabase")
both_configs = pytest.mark.parametrize("stack_mode", CONFIGS)


@dataclass
class Stack:
    api: httpx.AsyncClient
    emulator: httpx.AsyncClient
    admin: AdminConn
    secrets: LocalSecrets
    api_url: str
    mode: DevMode = "direct"
    stored_links: str = ""
    """How links to stored files begin: the API's /storage/ (the local folder) or emulated
    Supabase Storage's signed links."""

    @property
    def link_signature(self) -> str:
        """The query parameter that signs a stored file's link, in this configuration."""
        return "token=" if "/object/sign/" in self.stored_links else "signature="

    def token(
        self, user_id: uuid.UUID, *, ttl_s: int | None = None, app_role: str | None = None
    ) -> str:
        """A user token the API accepts in this configuration (HS256 or ES256 via JWKS)."""
        return mint_local_token(self.secrets, user_id, self.mode, ttl_s=ttl_s, app_role=app_role)

    def auth(self, user_id: uuid.UUID) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id)}"}

    async def user(self, credits: int = 100) -> tuple[uuid.UUID, dict[str, str]]:
        user_id = await create_user(self.admin, credits=credits)
        return user_id, self.auth(user_id)

    async def faults(self, **changes: object) -> None:
        response = await self.emulator.post("/__emulator/faults", json=changes)
        assert response.status_code == 200, response.text

    async def submit(self, headers: dict[str, str], **body: object) -> httpx.Response:
        payload: Json = {
            "prompt": "a paper boat drifting down a rainy street",
            "model": "t2v-14B",
            "resolution": "480p",
        }
        payload.update(body)
        return await self.api.post("/api/generation/text-to-video", json=payload, headers=headers)

    async def job_id(self, generation_id: str) -> str:
        cur = await self.admin.execute(
            "select job_id from public.generations where id = %s", (uuid.UUID(generation_id),)
        )
        row = await cur.fetchone()
        assert row is not None
        assert row[0], "generation has no job id"
        return str(row[0])

    async def settle(self, generation_id: str) -> Json:
        """Wait until the emulator has finished the prediction and delivered (or dropped) every
        webhook, then return the prediction."""
        job = await self.job_id(generation_id)
        response = await self.emulator.get(
            f"/__emulator/predictions/{job}", params={"wait": SETTLE_S}, timeout=SETTLE_S + 5
        )
        assert response.status_code == 200, response.text
        prediction: Json = response.json()
        return prediction

    async def kept(self, generation_id: str, headers: dict[str, str]) -> Json:
        """Wait (bounded) until the generation's video is in our storage; its status then."""
        gen_id = uuid.UUID(generation_id)
        for _ in range(400):
            cur = await self.admin.execute(
                "select video_path is not null or copy_error is not null"
                " from public.generations where id = %s",
                (gen_id,),
            )
            if await cur.fetchone() == (True,):
                break
            await asyncio.sleep(0.025)  # pacing of the observer, not a timing assumption
        body: Json = (await self.status(generation_id, headers)).json()
        return body

    async def status(self, generation_id: str, headers: dict[str, str]) -> httpx.Response:
        return await self.api.get(f"/api/generation/status/{generation_id}", headers=headers)


@pytest.fixture
def secrets(local_secrets: LocalSecrets) -> LocalSecrets:
    return local_secrets


@pytest.fixture
def stack_mode() -> DevMode:
    """The stack's configuration; `@both_configs` parametrizes it. WAN_TEST_STACK=supabase
    runs every end-to-end test in production's configuration instead."""
    return "supabase" if os.environ.get("WAN_TEST_STACK") == "supabase" else "direct"


@pytest.fixture
def emulator_url(secrets: LocalSecrets) -> Iterator[str]:
    config = EmulatorConfig(
        api_token=secrets.replicate_api_token,
        webhook_secret=secrets.webhook_secret,
        seed=7,
        faults=Faults(duration_s=0.3),
        webhook_retry_delays_s=(0.05, 0.1, 0.2),
    )
    with serve(create_emulator_app(config)) as url:
        yield url


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    """Tests override settings by overriding this fixture. A failed copy may be retried at
    once (the sweeps in these tests come right after each other)."""
    return {"replicate_timeout_s": 2.0, "copy_retry_after_s": 0}


@pytest.fixture
def api_base_url() -> str:
    """The API's URL, fixed up front so the emulators know where to send webhooks."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def settings(
    request: pytest.FixtureRequest,
    database_url: str,
    emulator_url: str,
    secrets: LocalSecrets,
    settings_overrides: dict[str, object],
    stack_mode: DevMode,
    tmp_path: Path,
    api_base_url: str,
) -> Settings:
    """The API's settings; its URL is fixed up front so webhooks know where to go."""
    url = api_base_url
    production: dict[str, object] = {}
    if stack_mode == "supabase":  # the emulator starts only for the tests that use it
        production = supabase_overrides(secrets, request.getfixturevalue("supabase_url"))
    return local_settings(
        database_url=database_url,
        api_url=url,
        emulator_url=emulator_url,
        secrets=secrets,
        storage_dir=tmp_path / "storage",
        **{**production, **settings_overrides},
    )


@pytest.fixture
def settings_storage(settings: Settings) -> LocalStorage:
    """The local folder storage the API uses in the direct configuration (same folder and key),
    for tests that look at stored files directly."""
    storage = open_storage(settings)
    assert isinstance(storage, LocalStorage), "a test of stored files runs the direct stack"
    return storage


@pytest.fixture
def expired_link(settings: Settings, secrets: LocalSecrets) -> Callable[[str], Awaitable[str]]:
    """A link to a stored file signed as the API's storage signs them, expired a minute ago:
    the local folder's (served by the API) or emulated Supabase Storage's."""

    async def link(path: str) -> str:
        storage = open_storage(settings)
        if isinstance(storage, LocalStorage):
            return await storage.signed_url(path, -60)
        await storage.aclose()
        now = int(time.time())
        signed = signed_path(secrets.jwt_secret, settings.storage_bucket, path, now - 120, now - 60)
        return f"{settings.supabase_url}{STORAGE_PREFIX}{signed}"

    return link


@pytest.fixture
def api_url(settings: Settings) -> Iterator[str]:
    assert settings.public_webhook_url is not None
    port = int(settings.public_webhook_url.split(":")[2].split("/")[0])
    with serve(create_app(settings=settings), port=port) as served:
        yield served


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[SweepServices]:
    """What the sweep runs on (the lifecycle, the keeper, the reconciler), opened by the same
    builder as production, in the test's own event loop."""
    async with sweep_job(settings) as opened:
        yield opened


@pytest.fixture
async def stack(
    api_url: str,
    emulator_url: str,
    admin: AdminConn,
    secrets: LocalSecrets,
    stack_mode: DevMode,
    settings: Settings,
) -> AsyncIterator[Stack]:
    if settings.storage_backend == "local":
        stored_links = f"{api_url}/storage/"
    else:
        stored_links = f"{settings.supabase_url}{STORAGE_PREFIX}/object/sign/"
    async with (
        httpx.AsyncClient(base_url=api_url, timeout=10) as api,
        httpx.AsyncClient(base_url=emulator_url, timeout=10) as emulator,
    ):
        yield Stack(api, emulator, admin, secrets, api_url, stack_mode, stored_links)
