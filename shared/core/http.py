"""The httpx clients this service opens (PostgREST, Storage, Auth, the JWKS, Replicate, the video
copier) are built here, the same way: HTTP/1.1 and one TLS context per process.

A TLS context costs ~18 ms of CPU to build (it parses every CA certificate in certifi's bundle)
and httpx builds one per client; a function opens up to four clients at start, and the JWKS
cache one per refresh. All of them trust the same CAs, so they share one context, built on the
first call as httpx builds its own (`httpx.create_ssl_context`: certifi, or SSL_CERT_FILE /
SSL_CERT_DIR when set). An `ssl.SSLContext` is meant to be shared by many connections.

On Modal the image sets SSL_CERT_DIR to Debian's hashed CA directory (`SYSTEM_CA_DIR`, from the
ca-certificates package, Mozilla's CAs as certifi's are): OpenSSL then reads a CA certificate
only when a handshake needs it, and building the context costs ~2 ms instead of ~18.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ssl

    import httpx


SYSTEM_CA_DIR = "/etc/ssl/certs"


@cache
def tls_context() -> ssl.SSLContext:
    import httpx

    return httpx.create_ssl_context()


def async_client(**options: Any) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` with `options`, verifying TLS with the shared context."""
    import httpx

    return httpx.AsyncClient(verify=tls_context(), **options)


def async_transport(**options: Any) -> httpx.AsyncHTTPTransport:
    """An `httpx.AsyncHTTPTransport` with `options`, verifying TLS with the shared context."""
    import httpx

    return httpx.AsyncHTTPTransport(verify=tls_context(), **options)
