"""What the typed callers of the SQL functions share (`Rpc`, its guardrail mixin, and
`PurchaseStore`): one transport, and the reading of the row a function returns."""

from __future__ import annotations

from shared.core.domain import Generation
from shared.core.errors import AppError
from shared.db.transports import RpcArg, RpcRow, Transport


class SqlCalls:
    """The base of one-method-per-SQL-function callers over a `Transport`."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    async def _one(self, fn: str, **args: RpcArg) -> RpcRow:
        rows = await self.transport.call(fn, args)
        if not rows:
            raise AppError(f"{fn} returned no row.")
        return rows[0]


def row_generation(row: RpcRow) -> Generation:
    return Generation.model_validate(row["generation"])


def row_int(row: RpcRow, key: str) -> int:
    """An integer column, 0 when it is absent or null."""
    value = row.get(key)
    return value if isinstance(value, int) else 0
