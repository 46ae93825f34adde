"""Fixtures the SQL-level tests share."""

from __future__ import annotations

import pytest

from shared.db.purchases import PurchaseStore
from shared.db.rpc import Rpc


@pytest.fixture
def store(rpc: Rpc) -> PurchaseStore:
    """The payment functions, on the test database's transport."""
    return PurchaseStore(rpc.transport)
