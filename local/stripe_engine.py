"""The Stripe emulator's state: Checkout Sessions, payments, refunds, disputes, signed events.

Events leave through one delivery worker, in emission order, signed exactly as Stripe signs
(`Stripe-Signature: t=...,v1=...`, shared.payments.signature). The fault knobs are the Replicate
emulator's (drop, duplicate, delay, reorder; rolled by the same seeded `Dice`) plus the payment
knobs: an asynchronous payment that succeeds or fails later, a dispute, a different amount paid.
A duplicate keeps its event id, as Stripe's do; a delivery answered with an error is retried.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Annotated, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from local.emulator_faults import Dice, Rate, Seconds
from shared.payments.signature import signature_header

log = logging.getLogger(__name__)
API_VERSION = "2025-03-31.basil"
Json = dict[str, JsonValue]


class StripeFaults(BaseModel):
    """Fault and payment knobs; rates are probabilities rolled once per payment or delivery."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook_drop_rate: Rate = 0.0
    """Share of event deliveries never sent."""
    webhook_duplicate_rate: Rate = 0.0
    """Share of event deliveries sent twice (same event id, as Stripe does)."""
    webhook_delay_s: Seconds = 0.0
    """Sleep before each delivery."""
    webhook_reorder: bool = False
    """Swap events in pairs: one is held back and sent right after the next one (a last odd
    one waits for POST /__emulator/flush)."""
    async_payment: bool = False
    """Payments complete `unpaid` first, then succeed with async_payment_succeeded."""
    async_fail_rate: Rate = 0.0
    """Share of payments that complete `unpaid` and then fail (async_payment_failed)."""
    dispute_rate: Rate = 0.0
    """Share of paid payments disputed right away (charge.dispute.created)."""
    dispute_outcome: Literal["won", "lost"] | None = None
    """When set, a dispute is closed with this outcome straight after it opens."""
    paid_amount: Annotated[int, Field(ge=0)] | None = None
    """When set, every payment reports this amount_total instead of the session's."""


class StripeEmulatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: str = Field(min_length=1)
    webhook_secret: str = Field(min_length=1)
    webhook_url: str | None = None
    """Where events go (the API's /api/webhooks/stripe); None: events are only recorded."""
    prices: dict[str, tuple[int, str]] = Field(default_factory=dict)
    """Stripe Price ids the emulator knows: id -> (unit amount, currency)."""
    seed: int | None = None
    faults: StripeFaults = StripeFaults()
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    webhook_retry_delays_s: tuple[Seconds, ...] = (0.2, 0.5, 1.0, 2.0)


@dataclass
class Delivery:
    event_id: str
    type: str
    outcome: str = "pending"  # delivered | failed | dropped | held
    attempts: int = 0
    status_code: int | None = None


@dataclass
class Session:
    data: Json
    payment_intent: str | None = None
    charge: Json | None = None
    dispute: Json | None = None
    intent_metadata: Json = field(default_factory=dict)  # payment_intent_data.metadata
    intent_status: str = "requires_payment_method"


@dataclass
class StripeState:
    sessions: dict[str, Session] = field(default_factory=dict)
    by_intent: dict[str, str] = field(default_factory=dict)
    events: list[Json] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)


def new_id(prefix: str) -> str:
    return f"{prefix}_test_{secrets.token_hex(12)}"


class StripeEngine:
    """All emulator state; lives on one event loop between `start` and `aclose`."""

    def __init__(self, config: StripeEmulatorConfig) -> None:
        self.config = config
        self.faults = config.faults
        self.state = StripeState()
        self._dice = Dice(config.seed)
        self._outbox: asyncio.Queue[Json] = asyncio.Queue()
        self._held: list[Json] = []
        self._worker: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(self.config.webhook_timeout_s))
        self._worker = asyncio.get_running_loop().create_task(self._deliver_all())

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()

    # --- payments -----------------------------------------------------------------------

    def pay(self, session: Session) -> None:
        """The buyer pressed Pay: complete the session and emit what Stripe would."""
        faults = self.faults
        data = session.data
        intent = new_id("pi")
        session.payment_intent = intent
        self.state.by_intent[intent] = str(data["id"])
        amount = faults.paid_amount if faults.paid_amount is not None else data["amount_total"]
        data.update(status="complete", payment_intent=intent, amount_total=amount)
        metadata: Json = dict(session.intent_metadata)
        session.charge = {
            "id": new_id("ch"),
            "object": "charge",
            "amount": amount,
            "amount_refunded": 0,
            "currency": data["currency"],
            "payment_intent": intent,
            "metadata": metadata,
            "refunded": False,
        }
        failing = self._dice.roll(faults.async_fail_rate)
        if failing or faults.async_payment:
            data["payment_status"] = "unpaid"
            session.intent_status = "processing"
            self.emit("checkout.session.completed", dict(data))
            if failing:
                # As Stripe: the session stays complete and unpaid; the PaymentIntent says why.
                session.intent_status = "requires_payment_method"
                self.emit("checkout.session.async_payment_failed", dict(data))
                return
            data["payment_status"] = "paid"
            session.intent_status = "succeeded"
            self.emit("checkout.session.async_payment_succeeded", dict(data))
        else:
            data["payment_status"] = "paid"
            session.intent_status = "succeeded"
            self.emit("checkout.session.completed", dict(data))
        if self._dice.roll(faults.dispute_rate):
            self.dispute(session, faults.dispute_outcome)

    def dispute(self, session: Session, outcome: str | None) -> Json:
        """Open a dispute on the session's charge (and close it with `outcome`, if given)."""
        assert session.charge is not None
        dispute: Json = {
            "id": new_id("dp"),
            "object": "dispute",
            "amount": session.charge["amount"],
            "currency": session.charge["currency"],
            "charge": session.charge["id"],
            "payment_intent": session.payment_intent,
            "metadata": {},
            "reason": "fraudulent",
            "status": "needs_response",
        }
        session.dispute = dispute
        self.emit("charge.dispute.created", dict(dispute))
        if outcome is not None:
            dispute["status"] = outcome
            self.emit("charge.dispute.closed", dict(dispute))
        return dispute

    def close_dispute(self, session: Session, outcome: str) -> Json:
        """Close the session's dispute as `won` or `lost`."""
        assert session.dispute is not None
        session.dispute["status"] = outcome
        self.emit("charge.dispute.closed", dict(session.dispute))
        return session.dispute

    def refund(self, session: Session, amount: int | None) -> Json:
        charge = session.charge
        assert charge is not None
        total = charge["amount"]
        already = charge["amount_refunded"]
        assert isinstance(total, int)
        assert isinstance(already, int)
        value = total - already if amount is None else amount
        if value <= 0 or already + value > total:
            raise ValueError(f"Refund amount ({value}) is greater than the unrefunded amount.")
        charge["amount_refunded"] = already + value
        charge["refunded"] = already + value == total
        self.emit("charge.refunded", dict(charge))
        return {
            "id": new_id("re"),
            "object": "refund",
            "amount": value,
            "currency": charge["currency"],
            "charge": charge["id"],
            "payment_intent": session.payment_intent,
            "status": "succeeded",
            "created": int(time.time()),
        }

    def expire(self, session: Session) -> None:
        session.data["status"] = "expired"
        self.emit("checkout.session.expired", dict(session.data))

    # --- events -------------------------------------------------------------------------

    def emit(self, event_type: str, obj: Json) -> Json:
        event: Json = {
            "id": new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "type": event_type,
            "data": {"object": obj},
        }
        self.state.events.append(event)
        if self.faults.webhook_reorder and not self._held:
            self._held = [event]  # waits for the next event, and then goes after it
            return event
        self._outbox.put_nowait(event)
        self.flush()
        return event

    def flush(self) -> int:
        """Send every event held back by `webhook_reorder`."""
        held, self._held = self._held, []
        for item in held:
            self._outbox.put_nowait(item)
        return len(held)

    async def settled(self, timeout_s: float) -> bool:
        """Wait until every queued event was delivered (or dropped)."""
        try:
            await asyncio.wait_for(self._outbox.join(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def _deliver_all(self) -> None:
        while True:
            event = await self._outbox.get()
            try:
                await self._deliver(event)
            except Exception:  # a delivery bug must not stop the worker; it is logged
                log.exception("stripe emulator: delivery failed")
            finally:
                self._outbox.task_done()

    async def _deliver(self, event: Json) -> None:
        faults = self.faults
        record = Delivery(str(event["id"]), str(event["type"]))
        self.state.deliveries.append(record)
        if self.config.webhook_url is None or self._dice.roll(faults.webhook_drop_rate):
            record.outcome = "dropped"
            return
        body = json.dumps(event).encode()
        copies = 2 if self._dice.roll(faults.webhook_duplicate_rate) else 1
        for _ in range(copies):
            if faults.webhook_delay_s:
                await asyncio.sleep(faults.webhook_delay_s)
            await self._post(record, body)

    async def _post(self, record: Delivery, body: bytes) -> None:
        assert self._http is not None
        assert self.config.webhook_url is not None
        for delay in (0.0, *self.config.webhook_retry_delays_s):
            await asyncio.sleep(delay)
            record.attempts += 1
            headers = {
                "Stripe-Signature": signature_header(
                    self.config.webhook_secret, int(time.time()), body
                ),
                "Content-Type": "application/json; charset=utf-8",
            }
            try:
                response = await self._http.post(
                    self.config.webhook_url, content=body, headers=headers
                )
            except httpx.HTTPError as exc:
                log.info("stripe emulator: %s for %s: %s", record.type, record.event_id, exc)
                continue
            record.status_code = response.status_code
            if response.is_success:
                record.outcome = "delivered"
                return
        record.outcome = "failed"
