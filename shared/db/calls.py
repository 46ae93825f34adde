"""What the typed callers of the SQL functions share (`Rpc`, its guardrail mixin, and
`PurchaseStore`): one transport, a method's parameters as its function's arguments, and the
reading of the row a function returns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

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


def sql_args(params: Mapping[str, object]) -> dict[str, RpcArg]:
    """Named values as an SQL function's arguments: `x` is passed as `p_x`.

    Called as `sql_args(locals())` before a method binds any other name, so the method's typed
    signature is the one list of the function's arguments (`self` is left out), or with
    `asdict(...)` of a dataclass whose fields are them; a method that converts an argument
    spells its arguments out instead.
    """
    # The method's signature has typed each value as an argument the transports take.
    return {f"p_{k}": cast("RpcArg", v) for k, v in params.items() if k != "self"}


def row_generation(row: RpcRow) -> Generation:
    return Generation.model_validate(row["generation"])


def row_int(row: RpcRow, key: str) -> int:
    """An integer column, 0 when it is absent or null."""
    value = row.get(key)
    return value if isinstance(value, int) else 0
