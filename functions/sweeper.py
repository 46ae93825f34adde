"""The reconciliation pass as a job: the Modal schedule, `wanctl sweep` and the local stack call
`run_once`. It opens the services, sweeps once, logs one summary line, and closes."""

from __future__ import annotations

from shared.core.config import Settings, get_settings
from shared.flows.reconcile import SweepSummary
from shared.wiring import Services


async def run_once(settings: Settings | None = None) -> SweepSummary:
    services = await Services.open(settings or get_settings())
    try:
        return await services.reconciler().sweep()
    finally:
        await services.aclose()
