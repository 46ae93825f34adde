"""Small fakes of our ports, for injecting faults while our own database stays real."""

from __future__ import annotations

from typing import Any, cast

from shared.db.port import Database


class DatabaseProxy:
    """Forwards every call of the database port to the real one (an `Rpc` over the test's
    PostgreSQL); a fault is a subclass that overrides the one call it breaks."""

    def __init__(self, inner: Database) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def port(self) -> Database:
        """This proxy, typed as the port it stands in for."""
        return cast("Database", self)
