"""The reconciliation pass: heal what lost webhooks, crashes and hung providers left behind.

Safe to run often and to overlap: rows are claimed with FOR UPDATE SKIP LOCKED and stamped, so
two passes never work the same generation, and every change is one state-machine call that
ignores what is stale. Provider calls run concurrently under a shared rate limit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shared.core.domain import Generation
from shared.core.errors import AppError, ProviderError
from shared.core.ratelimit import RateLimiter
from shared.db.rpc import Update
from shared.flows.keeper import Keeper
from shared.flows.lifecycle import Lifecycle
from shared.flows.purchases import Purchases
from shared.flows.removal import Remover, RetentionConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepConfig:
    stale_after_s: int = 90
    queued_grace_s: int = 120
    batch_size: int = 200
    max_batches: int = 50
    concurrency: int = 16
    max_run_s: int = 30 * 60


@dataclass
class SweepSummary:
    """What one pass did: counts by outcome, and how long it took."""

    counts: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, int | float]:
        return {"batches": self.batches, "seconds": round(self.seconds, 3), **self.counts}


class Reconciler:
    def __init__(
        self,
        lifecycle: Lifecycle,
        limiter: RateLimiter,
        *,
        config: SweepConfig,
        keeper: Keeper | None = None,
        purchases: Purchases | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        remover: Remover | None = None,
        retention: RetentionConfig | None = None,
    ) -> None:
        self.lifecycle = lifecycle
        self.limiter = limiter
        self.config = config
        self.keeper = keeper
        self.purchases = purchases
        self._now = now
        self.remover = remover
        self.retention = retention or RetentionConfig()

    async def sweep(self) -> SweepSummary:
        """Claim stale live generations batch by batch and settle each; one log line at the end."""
        started = time.monotonic()
        summary = SweepSummary()
        gate = asyncio.Semaphore(self.config.concurrency)
        rpc = self.lifecycle.rpc

        async def bounded(gen: Generation) -> None:
            async with gate:
                summary.counts[await self._settle(gen)] += 1

        for _ in range(self.config.max_batches):
            claimed = await rpc.claim_stale_generations(
                limit=self.config.batch_size, stale_after_s=self.config.stale_after_s
            )
            summary.batches += 1
            summary.counts["claimed"] += len(claimed)
            await asyncio.gather(*(bounded(gen) for gen in claimed))
            if len(claimed) < self.config.batch_size:
                break
        if self.keeper is not None:
            try:
                summary.counts.update(await self.keeper.retry_pending())
            except AppError as exc:
                log.warning("sweep could not retry copies: %s", exc.detail)
                summary.counts["errors"] += 1
        if self.purchases is not None:
            # Purchases still pending: a lost Stripe webhook never loses a purchase.
            try:
                purchase_counts = await self.purchases.reconcile()
                summary.counts.update({f"purchases_{k}": v for k, v in purchase_counts.items()})
            except AppError as exc:
                log.warning("sweep could not reconcile purchases: %s", exc.detail)
                summary.counts["errors"] += 1
        if self.remover is not None:
            try:
                summary.counts.update(await self.remover.purge(self.retention))
            except AppError as exc:
                log.warning("sweep could not purge media: %s", exc.detail)
                summary.counts["errors"] += 1
        summary.seconds = time.monotonic() - started
        log.info("sweep %s", json.dumps(summary.as_dict(), sort_keys=True))
        return summary

    async def _settle(self, gen: Generation) -> str:
        """Do what this generation needs; return the outcome's name (for the summary)."""
        try:
            if gen.job_id is None:
                return await self._unsubmitted(gen)
            return await self._running(gen, gen.job_id)
        except AppError as exc:
            log.warning(
                "sweep could not settle: %s (%s)",
                exc.detail,
                exc.code,
                extra={"generation_id": str(gen.id)},
            )
            return "errors"

    async def _unsubmitted(self, gen: Generation) -> str:
        # No job id: the process died between the reservation and mark_submitted, or the
        # create never reached the provider. A webhook would have adopted the job id by now.
        age = (self._now() - gen.created_at).total_seconds()
        if age < self.config.queued_grace_s:
            return "waiting"
        applied = await self.lifecycle.rpc.fail_submission(
            gen.id, "The generation never reached the video provider."
        )
        return "unsubmitted_failed" if applied.changed else "unchanged"

    async def _running(self, gen: Generation, job_id: str) -> str:
        provider = self.lifecycle.provider
        await self.limiter.acquire()
        try:
            prediction = await provider.get(job_id)
        except ProviderError as exc:
            if exc.extra.get("provider_status") != 404:
                raise
            lost = Update(
                gen.id, "failed", job_id, error="The provider has no record of it.", source="sweep"
            )
            applied = await self.lifecycle.rpc.apply_update(lost)
            return "lost_failed" if applied.changed else "unchanged"

        if prediction.our_status == "processing":
            overdue = (self._now() - gen.created_at).total_seconds() > self.config.max_run_s
            if overdue or gen.cancel_requested_at is not None:
                await self.limiter.acquire()
                canceled = await provider.cancel(job_id)
                if overdue:
                    minutes = self.config.max_run_s // 60
                    timed_out = Update(
                        gen.id,
                        "failed",
                        job_id,
                        error=f"Timed out after {minutes} min.",
                        source="sweep",
                        predict_time=canceled.predict_time,
                    )
                    applied = await self.lifecycle.rpc.apply_update(timed_out)
                    return "timed_out" if applied.changed else "unchanged"
                prediction = canceled

        applied = await self.lifecycle.apply_update(gen.id, prediction, source="sweep")
        if not applied.changed:
            return "unchanged"
        return applied.generation.status
