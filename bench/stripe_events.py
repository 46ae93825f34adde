"""Stripe events through apply_stripe_event: what one event and a burst of duplicates cost.

    python -m bench.stripe_events

Figures (medians of 5 repeats, each in a fresh database; `python -m bench stripe_events`):
- stripe_grant_ms: one checkout.session.completed applied (the grant), p50 over 200 purchases;
- stripe_refund_ms: one charge.refunded applied (the claw-back), p50 over the same purchases;
  both informational: no target was ever set for them;
- stripe_duplicate_burst_ms: 20 concurrent deliveries of one event plus 2 other events for the
  same session, wall time until all are answered. Target: the balance moves once (exactly one
  grant, the pack's credits added once) in every repeat, and the ledger invariants hold.
Measured through the psycopg transport acting as service_role, as the API does locally.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import psycopg

from bench.common import REPEATS, Figure, Postgres, median, report, run_alone, violations
from shared.core.purchases import Purchase, StripeFact
from shared.db.purchases import PurchaseStore
from shared.db.rpc import PostgresTransport
from shared.payments.packs import DEFAULT_PACKS

PURCHASES = 200


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
        before = await _balance(url, users[0])
        started = time.perf_counter()
        outcomes = await asyncio.gather(*(store.apply_event(f) for f in burst))
        burst_ms = (time.perf_counter() - started) * 1000
        moved = await _balance(url, users[0]) - before
    finally:
        await store.transport.aclose()
    granted = [o.outcome for o in outcomes if not o.duplicate].count("granted")
    return {
        "stripe_grant_ms": median(grants),
        "stripe_refund_ms": median(refunds),
        "stripe_duplicate_burst_ms": burst_ms,
        "burst_grants": granted,
        "burst_credits_moved": moved,
    }


async def _balance(url: str, user_id: uuid.UUID) -> int:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute("select credits from public.users where id = %s", (user_id,))
        row = await cur.fetchone()
    return 0 if row is None else int(row[0])


def run(pg: Postgres) -> list[Figure]:
    runs: list[dict[str, float]] = []
    bad_ledger = 0
    for _ in range(REPEATS):
        with pg.database("stripe") as url:
            runs.append(asyncio.run(_one_run(url)))
            bad_ledger += violations(url)
    credits = DEFAULT_PACKS[1].credits
    once = all(r["burst_grants"] == 1 and r["burst_credits_moved"] == credits for r in runs)
    burst = median([r["stripe_duplicate_burst_ms"] for r in runs])
    figures = [
        Figure(
            name=name,
            value=median([r[name] for r in runs]),
            unit="ms",
            target="none (informational)",
            passed=bad_ledger == 0,
            repeats=[{"ms": r[name]} for r in runs],
            detail={"purchases": PURCHASES, "note": f"p50 over {PURCHASES} purchases"},
        )
        for name in ("stripe_grant_ms", "stripe_refund_ms")
    ]
    figures.append(
        Figure(
            name="stripe_duplicate_burst_ms",
            value=burst,
            unit="ms",
            target=f"one grant of {credits} credits per burst, sound ledger",
            passed=once and bad_ledger == 0,
            repeats=[
                {
                    k: r[k]
                    for k in ("stripe_duplicate_burst_ms", "burst_grants", "burst_credits_moved")
                }
                for r in runs
            ],
            detail={
                "deliveries": 22,
                "note": "22 deliveries, "
                + ("the balance moved once in every repeat" if once else "NOT exactly once"),
            },
        )
    )
    for figure in figures:
        figure.detail["ledger_violations"] = bad_ledger
        report(figure)
    return figures


if __name__ == "__main__":
    run_alone(run)
