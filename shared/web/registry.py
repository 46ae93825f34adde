"""What the wiring built for an app, by type, and how handlers get it.

Kept apart from the dependencies that authenticate, so the webhook (which has no users) never
imports the JWT library.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import TypeVar

from starlette.requests import Request

T = TypeVar("T")

# What the wiring built for an app, by type: one endpoint group's services (and the
# authenticator) on Modal, every group's in the dev server. Set once at startup, read-only.
Registry = Mapping[type[object], object]


def provided(registry: Registry, kind: type[T]) -> T:
    """The registered object of type `kind` (a wiring bug if it is missing)."""
    found = registry[kind]
    assert isinstance(found, kind)
    return found


def services_of(kind: type[T]) -> Callable[[Request], Coroutine[None, None, T]]:
    """A dependency that hands a handler its endpoint group's services."""

    # Async on purpose: FastAPI runs a plain `def` dependency in its thread pool (a thread hop
    # per request for nothing).
    async def dependency(request: Request) -> T:
        return provided(request.app.state.services, kind)

    return dependency
