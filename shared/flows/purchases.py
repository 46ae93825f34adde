"""Buying credits: start a checkout, apply Stripe's events, reconcile what webhooks missed.

Every change is one SQL call (shared.payments.store): the grant, the claw-back and the hold are
decided in the database, so the webhook and the reconciliation pass share one rule and any
number of them may run at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from dataclasses import KW_ONLY, dataclass

from shared.core.errors import AppError, Conflict
from shared.core.purchases import EventOutcome, Purchase, StripeFact
from shared.core.ratelimit import RateLimiter
from shared.db.purchases import PurchaseStore
from shared.payments.gateway import CheckoutOrder, CheckoutSession, PaymentGateway
from shared.payments.packs import Packs

log = logging.getLogger(__name__)
# Stripe refuses a Checkout Session that expires sooner than this after it is created.
STRIPE_MIN_EXPIRY_S = 30 * 60
# PaymentIntent statuses after an asynchronous payment failed (or was given up).
_PAYMENT_FAILED = frozenset({"requires_payment_method", "canceled"})


@dataclass(frozen=True)
class PurchaseConfig:
    success_url: str
    cancel_url: str
    reconcile_after_s: int = 5 * 60
    checkout_expires_s: int = 3600
    reconcile_batch: int = 100
    concurrency: int = 8
    # CREATE_RATE_PER_MINUTE: a checkout takes one of the user's create slots (None: no limit).
    rate_per_minute: int | None = None


def settle_result(session: CheckoutSession) -> str | None:
    """What a retrieved session means for its purchase (settle_purchase's p_result), or None
    while the buyer may still pay."""
    if session.status == "expired":
        return "expired"
    if session.status == "complete":
        if session.payment_status in ("paid", "no_payment_required"):
            return "paid"
        return "unpaid"  # an asynchronous payment (bank debit) still on its way
    return None


@dataclass(frozen=True)
class Purchases:
    store: PurchaseStore
    gateway: PaymentGateway
    packs: Packs
    limiter: RateLimiter
    _: KW_ONLY
    config: PurchaseConfig

    async def checkout(
        self, user_id: uuid.UUID, pack_id: str, *, idempotency_key: str | None
    ) -> Purchase:
        """A pending purchase with its Checkout Session. A replayed key returns the same
        purchase and session (Stripe's own idempotency key is our purchase id, so even a replay
        after a failure half-way gets the one session)."""
        pack = self.packs.lookup(pack_id)
        purchase, _ = await self.store.create_purchase(
            user_id,
            pack,
            idempotency_key=idempotency_key,
            rate_per_minute=self.config.rate_per_minute,
        )
        if purchase.session_id is not None:
            return purchase
        if purchase.status != "pending":
            raise Conflict(
                f"This checkout already ended ({purchase.status}); "
                "start a new one with a new Idempotency-Key.",
                purchase_id=str(purchase.id),
                status=purchase.status,
            )
        # The session's expiry comes from the purchase, not the clock: a replay after a lost
        # answer sends Stripe the same parameters under the same idempotency key (other ones
        # are refused), and gets the session made the first time.
        expires_at = int(purchase.created_at.timestamp()) + self.config.checkout_expires_s
        if expires_at < time.time() + STRIPE_MIN_EXPIRY_S:
            raise Conflict(
                "This checkout is too old to open; start a new one with a new Idempotency-Key.",
                purchase_id=str(purchase.id),
                status=purchase.status,
            )
        # Without a session the purchase stays pending; reconciliation ends it after a while.
        session = await self.gateway.create_checkout(
            CheckoutOrder(
                purchase_id=purchase.id,
                user_id=user_id,
                pack=pack,
                success_url=self.config.success_url,
                cancel_url=self.config.cancel_url,
                expires_at=expires_at,
            )
        )
        return await self.store.attach_checkout_session(purchase.id, session.id, session.url)

    async def apply_event(self, fact: StripeFact) -> EventOutcome:
        outcome = await self.store.apply_event(fact)
        log.info(
            "stripe event %s %s -> %s%s",
            fact.event_id,
            fact.type,
            outcome.outcome,
            " (duplicate)" if outcome.duplicate else "",
        )
        return outcome

    async def reconcile(self) -> Counter[str]:
        """Ask Stripe about purchases pending for a while (rate-limited) and settle them; then
        apply refunds and disputes whose payment has become known. Counts by outcome."""
        counts: Counter[str] = Counter()
        claimed = await self.store.claim_pending_purchases(
            limit=self.config.reconcile_batch, older_than_s=self.config.reconcile_after_s
        )
        counts["claimed"] += len(claimed)
        gate = asyncio.Semaphore(self.config.concurrency)

        async def one(purchase: Purchase) -> None:
            async with gate:
                try:
                    counts[await self._settle(purchase)] += 1
                except AppError as exc:
                    log.warning("could not reconcile purchase %s: %s", purchase.id, exc.detail)
                    counts["errors"] += 1

        await asyncio.gather(*(one(p) for p in claimed))
        counts["late_events"] += await self.store.apply_unmatched_events(
            limit=self.config.reconcile_batch
        )
        return counts

    async def _settle(self, purchase: Purchase) -> str:
        if purchase.session_id is None:
            # The session was never created (Stripe refused or was down): nothing to pay.
            outcome, _ = await self.store.settle_purchase(purchase.id, "failed")
            return "never_started" if outcome == "failed" else outcome
        await self.limiter.acquire()
        session = await self.gateway.get_checkout(purchase.session_id)
        result = settle_result(session)
        if result is None:
            return "still_open"
        if result == "unpaid" and session.payment_intent is not None:
            # A bank debit on its way, or one that failed: only the PaymentIntent says which
            # (the session stays complete and unpaid either way).
            await self.limiter.acquire()
            if await self.gateway.payment_status(session.payment_intent) in _PAYMENT_FAILED:
                result = "failed"
        outcome, _ = await self.store.settle_purchase(
            purchase.id,
            result,
            payment_intent=session.payment_intent,
            amount=session.amount_total,
            currency=session.currency,
        )
        return outcome
