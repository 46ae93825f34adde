"""History: one user with 1,000,000 generations pages through them, newest first.

    python -m bench history

history_deep_page: list_generations (keyset pagination on (created_at, id)) for the first page
and for a page 100,000 rows deep, as the API calls it (service_role, one connection, the same
SQL text each time), under PostgreSQL's default plan choice and under
`plan_cache_mode = force_generic_plan` (PL/pgSQL caches a generic plan after a few calls; the
keyset bound must stay an index bound in it). Each repeat times CALLS calls of each page and
takes the median; the figure is the deep page's time over the first page's, the worse of the
two plan modes. Target: <= 1.5 x first page.

The rows are written straight into the table (failed generations, no money moved): the ledger
is not involved, so this group checks no ledger invariant. The plan of the keyset query under a
generic plan is printed with the figure (`index_bound`: the Index Cond carries created_at).
"""

from __future__ import annotations

import asyncio
import time
import uuid

from psycopg import sql

from bench.common import (
    REPEATS,
    DictConn,
    Figure,
    Postgres,
    connect,
    create_users,
    median,
    ratio_figure,
    report,
    run_alone,
)

ROWS = 1_000_000
DEPTH = 100_000
PAGE = 20
CALLS = 30
LIST_SQL = (
    "select * from public.list_generations(p_user_id => %(u)s, p_limit => %(n)s, "
    "p_before_created_at => %(t)s, p_before_id => %(i)s)"
)
# The keyset query of migrations/definitions/list_generations.sql, prepared and planned generic.
KEYSET_SQL = """
prepare keyset(uuid, timestamptz, uuid, integer) as
select to_jsonb(g.*) from public.generations g
 where g.user_id = $1 and (g.created_at, g.id) < ($2, $3)
 order by g.created_at desc, g.id desc
 limit $4
"""


async def _one_user_history(url: str) -> tuple[uuid.UUID, tuple[object, object]]:
    """The user, and the cursor (created_at, id) of the row DEPTH rows deep."""
    conn = await connect(url)
    try:
        (user,) = await create_users(conn, 1, credits=100)
        await conn.execute(
            """
            insert into public.generations (
              user_id, kind, model, resolution, prompt, cost, status, error_message,
              request_hash, created_at, updated_at, completed_at)
            select %s, 't2v', 't2v-14B', '480p', 'bench history row ' || i, 10, 'failed',
                   'bench', md5(i::text), now() - make_interval(secs => i),
                   now() - make_interval(secs => i), now() - make_interval(secs => i)
              from generate_series(1, %s) as i
            """,
            (user, ROWS),
        )
        await conn.execute("vacuum analyze public.generations")
        cur = await conn.execute(
            "select created_at, id from public.generations where user_id = %s"
            " order by created_at desc, id desc offset %s limit 1",
            (user, DEPTH),
        )
        (row,) = await cur.fetchall()
        return user, (row["created_at"], row["id"])
    finally:
        await conn.close()


async def _page_ms(conn: DictConn, user: uuid.UUID, cursor: tuple[object, object] | None) -> float:
    args = {
        "u": user,
        "n": PAGE,
        "t": cursor[0] if cursor else None,
        "i": cursor[1] if cursor else None,
    }
    times = []
    for _ in range(CALLS):
        started = time.perf_counter()
        cur = await conn.execute(LIST_SQL, args)
        rows = await cur.fetchall()
        times.append((time.perf_counter() - started) * 1000)
        assert len(rows) == PAGE
    return median(times)


async def _pairs(
    url: str, user: uuid.UUID, cursor: tuple[object, object], generic: bool
) -> list[tuple[float, float]]:
    conn = await connect(url, role="service_role")
    try:
        if generic:
            await conn.execute("set plan_cache_mode = force_generic_plan")
        await _page_ms(conn, user, None)  # warm: plans cached, pages in shared buffers
        await _page_ms(conn, user, cursor)
        pairs = []
        for _ in range(REPEATS):
            first = await _page_ms(conn, user, None)
            deep = await _page_ms(conn, user, cursor)
            pairs.append((deep, first))
        return pairs
    finally:
        await conn.close()


async def _generic_plan(url: str, user: uuid.UUID, cursor: tuple[object, object]) -> str:
    conn = await connect(url)
    try:
        await conn.execute("set plan_cache_mode = force_generic_plan")
        await conn.execute(KEYSET_SQL)
        # EXPLAIN EXECUTE takes no bind parameters: the values go in as literals.
        explain = sql.SQL(
            "explain (analyze, costs off, timing off, summary off) execute keyset({}, {}, {}, {})"
        ).format(*(sql.Literal(v) for v in (user, cursor[0], cursor[1], PAGE)))
        cur = await conn.execute(explain)
        return "\n".join(str(next(iter(r.values()))) for r in await cur.fetchall())
    finally:
        await conn.close()


def run(pg: Postgres) -> list[Figure]:
    with pg.database("history") as url:
        user, cursor = asyncio.run(_one_user_history(url))
        by_mode = {
            mode: asyncio.run(_pairs(url, user, cursor, generic=mode == "generic"))
            for mode in ("default", "generic")
        }
        plan = asyncio.run(_generic_plan(url, user, cursor))
    ratios = {mode: median([d / f for d, f in pairs]) for mode, pairs in by_mode.items()}
    worst = max(ratios, key=lambda m: ratios[m])
    index_bound = any("Index Cond" in line and "created_at" in line for line in plan.splitlines())
    return [
        report(
            ratio_figure(
                "history_deep_page",
                by_mode[worst],
                raw_unit="ms per page",
                at_most=1.5,
                extra_ok=index_bound,
                labels=("deep_page_ms", "first_page_ms"),
                detail={
                    "rows": ROWS,
                    "depth": DEPTH,
                    "page": PAGE,
                    "ratio_default_plan": round(ratios["default"], 3),
                    "ratio_generic_plan": round(ratios["generic"], 3),
                    "index_bound_under_generic_plan": index_bound,
                    "generic_plan": plan,
                    "note": f"{DEPTH:,} rows deep of {ROWS:,}; worst of default/generic ({worst})",
                },
            )
        )
    ]


if __name__ == "__main__":
    run_alone(run)
