from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI

from local.serve import serve


def test_serves_the_app_on_a_free_loopback_port_until_exit() -> None:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    with serve(app) as url:
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/ping").json() == {"pong": "yes"}
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/ping")


def test_two_servers_get_different_ports() -> None:
    with serve(FastAPI()) as first, serve(FastAPI()) as second:
        assert first != second


def test_lifespan_runs_before_the_url_is_yielded_and_after_exit() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    with serve(FastAPI(lifespan=lifespan)):
        assert events == ["startup"]
    assert events == ["startup", "shutdown"]


def test_app_that_fails_to_start_raises_instead_of_hanging() -> None:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        raise RuntimeError("no database")
        yield

    with (
        pytest.raises(RuntimeError, match="exited during startup"),
        serve(FastAPI(lifespan=lifespan)),
    ):
        pass
