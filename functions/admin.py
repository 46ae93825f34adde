"""GET /api/admin/stats: the operator's numbers, each against its target (admins only).

`wanctl stats` prints the same figures; both come from one SQL function (operator_stats).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query
from fastapi.responses import JSONResponse

from shared import wiring
from shared.core.config import Settings
from shared.core.domain import JsonObject
from shared.core.errors import InvalidInput
from shared.db.rpc import Rpc
from shared.web.app import create_app as _create_app
from shared.web.deps import Admin
from shared.web.registry import services_of
from shared.web.schemas import error_responses
from shared.wiring import AdminServices

router = APIRouter()
Services = Annotated[AdminServices, Depends(services_of(AdminServices))]
_WINDOW = re.compile(r"^([1-9][0-9]{0,4})([mhd])$")
_UNIT_S = {"m": 60, "h": 3600, "d": 86400}
MAX_WINDOW_S = 400 * 86400


def parse_window(text: str) -> timedelta:
    """`30m`, `24h`, `7d` -> a duration (at most 400 days)."""
    match = _WINDOW.match(text.strip())
    if match is None:
        raise InvalidInput("since must look like 30m, 24h or 7d.", field="since")
    seconds = int(match.group(1)) * _UNIT_S[match.group(2)]
    if seconds > MAX_WINDOW_S:
        raise InvalidInput("since may reach back at most 400 days.", field="since")
    return timedelta(seconds=seconds)


async def operator_stats(rpc: Rpc, settings: Settings, window: timedelta) -> JsonObject:
    """The figures of the last `window`, with the targets from settings."""
    return await rpc.operator_stats(
        since=datetime.now(UTC) - window,
        success_target=settings.target_success_rate,
        completion_target_s=settings.target_completion_s,
        webhook_target=settings.target_webhook_rate,
        daily_budget_usd=settings.provider_daily_budget_usd,
    )


@router.get(
    "/api/admin/stats", response_class=JSONResponse, responses=error_responses(401, 403, 422)
)
async def admin_stats(
    admin: Admin,
    services: Services,
    since: Annotated[str, Query(max_length=8)] = "24h",
) -> JSONResponse:
    """Success rate, completion time, webhook delivery, credit accuracy, refunds, credits,
    provider spend, revenue and margin (USD), each with its target where it has one."""
    del admin  # the dependency is the check
    stats = await operator_stats(services.db, services.settings, parse_window(since))
    return JSONResponse(stats)


def create_app(settings: Settings | None = None) -> FastAPI:
    return _create_app(router, open_services=wiring.admin, settings=settings)
