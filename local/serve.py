"""Run an ASGI app under uvicorn in a background thread, on a free loopback port.

For tests and the local stack:

    with serve(create_emulator_app(config)) as base_url:
        client = replicate.Client(api_token=token, base_url=base_url)

The socket is bound before the server starts (port 0: the kernel picks a free port, so there
is no race between finding a port and using it); the context manager returns only once uvicorn
reports `started` (lifespan startup done, socket listening) and stops the server on exit.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Protocol

import uvicorn
from starlette.types import ASGIApp

_POLL_S = 0.005


def free_port() -> int:
    """A port free on loopback right now (the OS's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout_s: float = 10.0,
    shutdown_timeout_s: int = 10,
    log_level: str = "warning",
    reuse_port: bool = False,
) -> Iterator[str]:
    """Serve `app` on `host:port` (0 = a free port) and yield its base URL `http://host:port`.

    `reuse_port` lets several processes serve one port (SO_REUSEPORT: the kernel spreads the
    connections among them), as several containers serve one web endpoint on Modal.

    Raises RuntimeError if the server dies or does not start within `startup_timeout_s`.
    """
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say they are TCP;
    # otherwise every reply split in two writes waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan="on",
        http="httptools",
        ws="none",
        log_config=None,
        log_level=log_level,
        access_log=False,
        # Nothing stands in front of a local server, and no answer needs to name the server.
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=shutdown_timeout_s,
    )
    server = uvicorn.Server(config)

    def run() -> None:
        # uvicorn leaves with sys.exit when the app's startup fails; in a thread that would be
        # an unhandled thread exception, so keep it quiet and report it from here instead.
        with contextlib.suppress(SystemExit):
            server.run(sockets=[sock])

    thread = threading.Thread(target=run, name=f"uvicorn:{bound_port}", daemon=True)
    try:
        thread.start()
        deadline = time.monotonic() + startup_timeout_s
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(
                    f"server on {host}:{bound_port} exited during startup (see the uvicorn log)"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"server on {host}:{bound_port} did not start in time")
            thread.join(_POLL_S)  # returns early if the thread dies
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        if thread.is_alive():
            thread.join(shutdown_timeout_s)
        if thread.is_alive():
            server.force_exit = True
            thread.join(shutdown_timeout_s)
        sock.close()


class Engine(Protocol):
    """An emulator's background machinery (deliveries, timers): runs while its app is served."""

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


def engine_lifespan(engine: Engine) -> Callable[[object], AbstractAsyncContextManager[None]]:
    """The lifespan of an emulator app: its engine starts with the app and closes after it."""

    @asynccontextmanager
    async def lifespan(_: object) -> AsyncIterator[None]:
        await engine.start()
        try:
            yield
        finally:
            await engine.aclose()

    return lifespan
