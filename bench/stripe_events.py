"""Stripe events through apply_stripe_event: what one event and a burst of duplicates cost.

    python -m bench.stripe_events

Figures (medians of 5 repeats; informational, not wired into `python -m bench`):
- stripe_grant_ms: one checkout.session.completed applied (the grant), p50 over 200 purchases;
- stripe_refund_ms: one charge.refunded applied (the claw-back), p50 over the same purchases;
- stripe_duplicate_burst_ms: 20 concurrent deliveries of one event plus 2 other events for the
  same session, wall time until all are answered (the balance moves once).
Measured through the psycopg transport acting as service_role, as the API does locally.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid

import psycopg

from bench.common import Postgres
from shared.core.purchases import Purchase, StripeFact
from shared.db.purchases import PurchaseStore
from shared.db.rpc import PostgresTransport
from shared.payments.packs import DEFAULT_PACKS

PURCHASES = 200
REPEATS = 5


def _completed(p: Purchase, event_id: str | None = None) -> StripeFact:
    return StripeFact(
        event_id or f"evt_{uuid.uuid4().hex}",
        "checkout.session.completed",
        purchase_id=p.id,
        payment_intent=f"pi_{p.id.hex}",
        payment_status="paid",
        amount=p.amount,
        currency=p.currency,
    )


async def _one_run(url: str) -> dict[str, float]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
        cur = await admin.execute(
            "insert into auth.users (email) select 'bench-' || g || '@x.test' "
            "from generate_series(1, %s) g returning id",
            (PURCHASES,),
        )
        users = [row[0] for row in await cur.fetchall()]
    store = PurchaseStore(await PostgresTransport.open(url, max_size=32, role="service_role"))
    try:
        bought = [
            (
                await store.create_purchase(
                    u, DEFAULT_PACKS[0], idempotency_key=None, rate_per_minute=None
                )
            )[0]
            for u in users
        ]
        grants, refunds = [], []
        for p in bought:
            started = time.perf_counter()
            await store.apply_event(_completed(p))
            grants.append((time.perf_counter() - started) * 1000)
        for p in bought:
            fact = StripeFact(f"evt_{uuid.uuid4().hex}", "charge.refunded", purchase_id=p.id,
                              payment_intent=f"pi_{p.id.hex}", amount_refunded=250)  # fmt: skip
            started = time.perf_counter()
            await store.apply_event(fact)
            refunds.append((time.perf_counter() - started) * 1000)
        target = (
            await store.create_purchase(
                users[0], DEFAULT_PACKS[1], idempotency_key=None, rate_per_minute=None
            )
        )[0]
        event = _completed(target)
        burst = [event] * 20 + [_completed(target), _completed(target)]
        started = time.perf_counter()
        outcomes = await asyncio.gather(*(store.apply_event(f) for f in burst))
        burst_ms = (time.perf_counter() - started) * 1000
        assert [o.outcome for o in outcomes if not o.duplicate].count("granted") == 1
    finally:
        await store.transport.aclose()
    return {
        "stripe_grant_ms": statistics.median(grants),
        "stripe_refund_ms": statistics.median(refunds),
        "stripe_duplicate_burst_ms": burst_ms,
    }


def main() -> None:
    pg = Postgres()
    pg.prepare_template()
    runs = []
    for _ in range(REPEATS):
        with pg.database("stripe") as url:
            runs.append(asyncio.run(_one_run(url)))
    figures = {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}
    for name, value in figures.items():
        print(f"{name}: {value} ms")
    print(json.dumps({"runs": runs}))


if __name__ == "__main__":
    main()
