"""The reconciliation pass as a job: the Modal schedule, `wanctl sweep` and the local stack call
`run_once`. It opens what the sweep uses, sweeps once, logs one summary line, and closes."""

from __future__ import annotations

from shared.core.config import Settings, get_settings
from shared.flows.reconcile import SweepSummary
from shared.wiring import sweep_job


async def run_once(settings: Settings | None = None) -> SweepSummary:
    async with sweep_job(settings or get_settings()) as services:
        return await services.reconciler.sweep()
