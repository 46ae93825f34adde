"""DESIGN §3's ledger invariants as queries, one source for the tests (which assert every one
holds) and the benchmarks (which count what breaks them after every scenario).

Each query returns the rows that break its invariant; a sound database returns none.
"""

from __future__ import annotations

from typing import Any

import psycopg

# For every user: credits = SUM(ledger) >= 0.
BALANCES = """
select u.id, u.credits, coalesce(sum(t.amount), 0)
  from public.users u left join public.credit_transactions t on t.user_id = u.id
 group by u.id, u.credits
having u.credits <> coalesce(sum(t.amount), 0) or u.credits < 0
"""

# Every generation charged once; refunded once when failed or canceled, never otherwise.
GENERATIONS = """
select g.id, g.status,
       count(*) filter (where t.type = 'deduction') as deductions,
       count(*) filter (where t.type = 'refund') as refunds
  from public.generations g
  left join public.credit_transactions t on t.generation_id = g.id
 group by g.id, g.status
having count(*) filter (where t.type = 'deduction') <> 1
    or count(*) filter (where t.type = 'refund')
       <> (g.status in ('failed', 'canceled'))::int
"""

# A purchase grants its credits once exactly when paid; what its reversals took back is what it
# records as reversed (less what is still owed), never more than it granted.
PURCHASES = """
select p.id, p.status, p.credits_reversed, p.credits_owed,
       count(*) filter (where t.type = 'purchase') as grants,
       coalesce(sum(-t.amount) filter (
         where t.type in ('purchase_reversal', 'purchase_restore')), 0) as taken
  from public.purchases p
  left join public.credit_transactions t on t.purchase_id = p.id
 where p.user_id is not null
 group by p.id
having count(*) filter (where t.type = 'purchase') <> (p.status = 'paid')::int
    or coalesce(sum(-t.amount) filter (
         where t.type in ('purchase_reversal', 'purchase_restore')), 0)
       <> p.credits_reversed - p.credits_owed
    or p.credits_reversed > p.credits
"""

INVARIANTS = {
    "balance differs from ledger": BALANCES,
    "generations charged/refunded wrongly": GENERATIONS,
    "purchases granted/reversed wrongly": PURCHASES,
}


async def ledger_violations(conn: psycopg.AsyncConnection[Any]) -> dict[str, list[Any]]:
    """The rows breaking each invariant, by its description; only those with any."""
    found: dict[str, list[Any]] = {}
    for description, query in INVARIANTS.items():
        cur = await conn.execute(query)
        rows = await cur.fetchall()
        if rows:
            found[description] = list(rows)
    return found
