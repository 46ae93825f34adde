"""shared.core.startup and shared.core.http: what a cold start leaves out, and that what it
leaves out is never needed.

Each probe runs in a fresh interpreter: what a process imports first decides what is left out.
"""

from __future__ import annotations

import gc
import os
import ssl
import subprocess
import sys
from collections.abc import Callable

import pytest

from shared.core import http as shared_http
from shared.core.http import SYSTEM_CA_DIR
from shared.core.startup import collector_paused


def _probe(script: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(  # noqa: S603 - our own interpreter, a fixed script
        [sys.executable, "-c", script],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


LOADED = """
def loaded(*names):
    return sorted(n for n in names if sys.modules.get(n) is not None)
"""


def test_httpx_clients_work_without_the_cli_or_http2() -> None:
    script = f"""
import sys
{LOADED}
import shared
import asyncio, httpx
from shared.core.http import async_client

async def main():
    async def handler(request):
        return httpx.Response(200, json={{"path": request.url.path}})
    async with async_client(transport=httpx.MockTransport(handler)) as client:
        return (await client.get("https://example.test/a")).json()["path"]

print(asyncio.run(main()))
print(loaded("rich", "click", "pygments", "h2", "hpack", "httpx._main"))
"""
    assert _probe(script).splitlines() == ["/a", "[]"]


def test_http2_if_ever_asked_for_fails_loudly() -> None:
    """Nothing of ours asks for HTTP/2; if something did, it fails at its first connection
    instead of silently speaking HTTP/1.1."""
    script = """
import shared
import asyncio, socket, httpx

async def main():
    server = socket.create_server(("127.0.0.1", 0))  # accepts; never answers
    port = server.getsockname()[1]
    async with httpx.AsyncClient(http1=False, http2=True, timeout=5) as client:
        try:
            await client.get(f"http://127.0.0.1:{port}/")
        except (ImportError, RuntimeError):
            return "refused"
        except httpx.HTTPError as exc:
            return "no refusal: " + repr(exc)
        finally:
            server.close()

print(asyncio.run(main()))
"""
    assert _probe(script) == "refused"


def test_jwk_verification_never_loads_x509_and_hs256_still_refuses_a_certificate() -> None:
    script = f"""
import sys
{LOADED}
import shared
import jwt
from cryptography.hazmat.primitives.asymmetric import ec

key = ec.generate_private_key(ec.SECP256R1())
token = jwt.encode({{"sub": "u"}}, key, algorithm="ES256")
jwk = jwt.PyJWK.from_dict(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True))
print(jwt.decode(token, jwk, algorithms=["ES256"])["sub"])
print(type(sys.modules["cryptography.x509"]).__name__)  # still lazy: never used

secret = "s" * 32
hs256 = jwt.encode({{"sub": "v"}}, secret, algorithm="HS256")
print(jwt.decode(hs256, secret, algorithms=["HS256"])["sub"])
print(type(sys.modules["cryptography.x509"]).__name__)  # HS256 loads it to check the key
try:  # and its check still works: an EC public key's DER is no HMAC secret
    from cryptography.hazmat.primitives import serialization
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    jwt.decode(hs256, der, algorithms=["HS256"])
except jwt.InvalidKeyError:
    print("refused")
"""
    assert _probe(script).splitlines() == ["u", "_LazyModule", "v", "module", "refused"]


def test_what_was_imported_before_is_left_alone() -> None:
    script = f"""
import sys
{LOADED}
import httpx, cryptography.x509
import shared
print(type(sys.modules["cryptography.x509"]).__name__, sys.modules["httpx._main"] is not None)
"""
    assert _probe(script) == "module True"


def test_collector_paused_restores_the_collector_and_freezes_the_start() -> None:
    script = """
import gc
import shared
from shared.core.startup import collector_paused

before = gc.get_freeze_count()
with collector_paused():
    inside = gc.isenabled()
    start = [[] for _ in range(1000)]  # containers: tracked by the collector
print(inside, gc.isenabled(), gc.get_freeze_count() - before >= 1000)
gc.disable()
with collector_paused():
    pass
print(gc.isenabled())
"""
    assert _probe(script).splitlines() == ["False True True", "False"]


def test_collector_paused_restores_the_collector_after_a_failed_start() -> None:
    enabled = gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("the services did not open")
    assert gc.isenabled() == enabled


def test_every_client_shares_one_tls_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading the CA bundle is what a TLS context costs; a process does it once."""
    loads: list[object] = []
    original: Callable[..., None] = ssl.SSLContext.load_verify_locations

    def counted(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loads.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    shared_http.tls_context.cache_clear()
    try:
        clients = [shared_http.async_client(timeout=1.0) for _ in range(3)]
        transport = shared_http.async_transport()
        assert len(loads) == 1
    finally:
        shared_http.tls_context.cache_clear()
    assert transport is not None
    assert all(c is not None for c in clients)


TELEMETRY_PROBE = """
import asyncio, os
import shared
from fastapi import APIRouter
from opentelemetry import trace
from shared.core.config import Settings
from shared.web.app import create_app

class Recording(trace.TracerProvider):  # a configured provider, as an SDK's would be
    asked = 0
    def get_tracer(self, *args, **kwargs):
        Recording.asked += 1
        return trace.NoOpTracer()

trace.set_tracer_provider(Recording())
router = APIRouter()

@router.get("/ping")
async def ping() -> dict[str, str]:
    return {"ok": "yes"}

from contextlib import asynccontextmanager
@asynccontextmanager
async def nothing(settings):
    yield {}

app = create_app(router, open_services=nothing, settings=Settings(environment="test"))

async def main():
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": "/ping", "raw_path": b"/ping", "query_string": b"",
             "root_path": "", "headers": [(b"host", b"x")], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 2), "state": {}}
    sent = []
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}
    async def send(message):
        sent.append(message)
    await app(scope, receive, send)
    return sent[0]["status"]

print(asyncio.run(main()), Recording.asked > 0)
"""


@pytest.mark.parametrize(("setting", "traced"), [(None, "False"), ("true", "True")])
def test_fastapi_telemetry_runs_only_when_the_deployment_turns_it_on(
    setting: str | None, traced: str
) -> None:
    """Off by default (it only looks for providers on every request); FASTAPI_TELEMETRY=true
    hands requests to the OpenTelemetry providers the deployment configured."""
    pytest.importorskip("fastapi.telemetry", reason="FastAPI before 0.145 has no telemetry")
    env = {k: v for k, v in os.environ.items() if k != "FASTAPI_TELEMETRY"}
    if setting is not None:
        env["FASTAPI_TELEMETRY"] = setting
    assert _probe(TELEMETRY_PROBE, env).split() == ["200", traced]


TLS_PROBE = """
import ssl
from shared.core.http import tls_context

context = tls_context()
print(context.verify_mode == ssl.CERT_REQUIRED, context.check_hostname,
      context.cert_store_stats()["x509_ca"] > 0)
"""


@pytest.mark.parametrize(
    ("cert_dir", "loaded"), [(None, "True"), (SYSTEM_CA_DIR, "False")], ids=["certifi", "dir"]
)
def test_the_tls_context_verifies_and_a_ca_directory_loads_lazily(
    cert_dir: str | None, loaded: str
) -> None:
    """With SSL_CERT_DIR (the Modal image's setting) no CA is read until a handshake needs it;
    without it certifi's bundle is read whole. Either way certificates and host names are
    verified."""
    if cert_dir is not None and not os.path.isdir(cert_dir):
        pytest.skip(f"{cert_dir} is not on this machine")
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    if cert_dir is not None:
        env["SSL_CERT_DIR"] = cert_dir
    assert _probe(TLS_PROBE, env).split() == ["True", "True", loaded]
