"""Small builders and checks shared by the tests."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import httpx
import psycopg
from psycopg import sql

from local.ledger import ledger_violations
from shared.core.domain import NewGeneration

AdminConn = psycopg.AsyncConnection[tuple[object, ...]]
if TYPE_CHECKING:
    from shared.core.domain import Generation
    from shared.core.errors import AppError
    from shared.db.rpc import Rpc
    from shared.storage.port import Storage


async def create_user(
    admin: AdminConn, *, credits: int | None = None, email: str | None = None
) -> uuid.UUID:
    """Sign a confirmed user up through auth.users (so the trigger runs and grants the signup
    bonus), then set the balance exactly."""
    email = email or f"user-{uuid.uuid4().hex[:8]}@example.test"
    cur = await admin.execute(
        "insert into auth.users (email, email_confirmed_at) values (%s, now()) returning id",
        (email,),
    )
    row = await cur.fetchone()
    assert row is not None
    user_id = row[0]
    assert isinstance(user_id, uuid.UUID)
    if credits is not None and credits != 100:
        await admin.execute(
            "select public.add_credits(%s, %s, 'adjustment', 'test setup')",
            (user_id, credits - 100),
        )
    return user_id


async def balance(admin: AdminConn, user_id: uuid.UUID) -> int:
    cur = await admin.execute("select credits from public.users where id = %s", (user_id,))
    row = await cur.fetchone()
    assert row is not None
    value = row[0]
    assert isinstance(value, int)
    return value


async def ledger_types(admin: AdminConn, generation_id: uuid.UUID) -> list[str]:
    cur = await admin.execute(
        "select type from public.credit_transactions where generation_id = %s order by created_at",
        (generation_id,),
    )
    return [str(r[0]) for r in await cur.fetchall()]


async def assert_ledger_invariants(admin: AdminConn) -> None:
    """Every invariant of local.ledger holds (DESIGN §3): balances, generations, purchases."""
    assert await ledger_violations(admin) == {}


@asynccontextmanager
async def acting_as(
    admin: AdminConn, role: str, user_id: uuid.UUID | None = None
) -> AsyncIterator[None]:
    """Inside a transaction that is rolled back, `admin` acts as the API `role` (and as the user
    `user_id`): the JWT claims and the role Supabase sets for a request."""
    async with admin.transaction(force_rollback=True):
        claims = {"role": role, **({"sub": str(user_id)} if user_id else {})}
        await admin.execute(
            "select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),)
        )
        await admin.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
        yield


def new_generation(user_id: uuid.UUID, **fields: object) -> NewGeneration:
    """A valid text-to-video request for user_id (480p, 10 credits), with `fields` changed."""
    values: dict[str, object] = {
        "user_id": user_id,
        "kind": "t2v",
        "model": "t2v-14B",
        "resolution": "480p",
        "prompt": "a slow pan over mountains",
        "cost": 10,
        **fields,
    }
    return NewGeneration.model_validate(values)


class Clock:
    """A settable clock for code that takes `clock: Callable[[], float]`."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def queued_generation(rpc: Rpc, user: uuid.UUID) -> Generation:
    """A queued text-to-video generation of `user` (10 credits)."""
    created = await rpc.create_generation(new_generation(user), max_active=100)
    return created.generation


async def completed_generation(
    rpc: Rpc, admin: AdminConn, video_url: str = "https://example.test/out.mp4"
) -> Generation:
    """A new user's generation, submitted and then reported completed with `video_url`."""
    gen = await queued_generation(rpc, await create_user(admin))
    await rpc.mark_submitted(gen.id, f"job-{gen.id.hex[:12]}")
    applied = await rpc.apply_prediction(gen.id, "completed", video_url=video_url)
    return applied.generation


async def outcomes(calls: Iterable[Awaitable[object]], refused: type[AppError]) -> list[str]:
    """Run the calls at once; each one's outcome: "ok", or the code of the `refused` it raised
    (any other error fails the test)."""

    async def one(call: Awaitable[object]) -> str:
        try:
            await call
        except refused as exc:
            return exc.code
        return "ok"

    return list(await asyncio.gather(*(one(c) for c in calls)))


async def fetch_link_signed_for_another_file(storage: Storage) -> httpx.Response:
    """Store two users' videos, then fetch the first one's signed link with the second one's
    path put in its place (a signature must cover the path)."""
    await storage.put_bytes("user-1/videos/gen-1.mp4", b"video", "video/mp4")
    await storage.put_bytes("user-2/videos/gen-2.mp4", b"other", "video/mp4")
    url = await storage.signed_url("user-1/videos/gen-1.mp4", 60)
    async with httpx.AsyncClient() as http:
        return await http.get(url.replace("user-1/videos/gen-1", "user-2/videos/gen-2"))
