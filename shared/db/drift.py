"""Does the database's catalog say what migrations/definitions/ says?

Every function in the `public` and `private` schemas, every trigger that runs one of them or
sits on one of our tables, and every policy on a public table must come from exactly one
definition file named for it, with the same body, and nothing else may exist: no stale
overload, no function left behind by an old migration, no function changed by hand. Functions
must also be SECURITY DEFINER with an empty search_path, and only service_role may execute
the public ones (nobody the private ones). `schema_drift` lists every difference as a sentence;
an empty list means the files describe the database.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from shared.db.migrate import DEFINITIONS, MIGRATIONS_DIR

if TYPE_CHECKING:
    import psycopg

_FUNCTION = re.compile(
    r"create\s+or\s+replace\s+function\s+(public|private)\.(\w+)\s*\(.*?\bas\s+\$\$(.*?)\$\$",
    re.IGNORECASE | re.DOTALL,
)
_TRIGGER = re.compile(r"(create\s+or\s+replace\s+trigger\s+\w+.*?);", re.IGNORECASE | re.DOTALL)
_POLICY = re.compile(r"create\s+policy\s+(\w+)\s+on\s+public\.(\w+)", re.IGNORECASE)

_FUNCTIONS_SQL = """
select n.nspname, p.proname, p.prosrc, p.prosecdef, coalesce(p.proconfig, '{}'),
       has_function_privilege('anon', p.oid, 'execute')
         or has_function_privilege('authenticated', p.oid, 'execute'),
       has_function_privilege('service_role', p.oid, 'execute')
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where n.nspname in ('public', 'private')
   and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
 order by 1, 2
"""
_TRIGGERS_SQL = """
select t.tgname, pg_get_triggerdef(t.oid)
  from pg_trigger t
  join pg_class c on c.oid = t.tgrelid
  join pg_namespace tn on tn.oid = c.relnamespace
  join pg_proc p on p.oid = t.tgfoid
  join pg_namespace pn on pn.oid = p.pronamespace
 where not t.tgisinternal
   and (tn.nspname in ('public', 'private') or pn.nspname in ('public', 'private'))
 order by 1
"""
_POLICIES_SQL = "select tablename, policyname from pg_policies where schemaname = 'public'"


def _normal(sql: str) -> str:
    return " ".join(sql.replace("or replace ", "").split()).lower().rstrip(";")


async def schema_drift(
    conn: psycopg.AsyncConnection[tuple[object, ...]], directory: Path = MIGRATIONS_DIR
) -> list[str]:
    """Every difference between the catalog and the definition files, as sentences."""
    root = directory / DEFINITIONS
    bodies: dict[tuple[str, str], str] = {}
    triggers: dict[str, str] = {}
    policies: dict[str, set[str]] = defaultdict(set)
    problems: list[str] = []
    for path in sorted(root.rglob("*.sql")):
        rel = path.relative_to(root).as_posix()
        text = path.read_text(encoding="utf-8")
        folder, _, stem = rel.removesuffix(".sql").rpartition("/")
        if folder == "triggers":
            found = _TRIGGER.findall(text)
            if len(found) != 1 or f" {stem} " not in _normal(found[0]) + " ":
                problems.append(f"{rel} must create exactly the trigger {stem}")
            triggers.update({stem: _normal(found[0])} if found else {})
        elif folder == "policies":
            for name, table in _POLICY.findall(text):
                if table != stem:
                    problems.append(f"{rel} creates policy {name} on another table ({table})")
                policies[stem].add(name)
        else:
            functions = _FUNCTION.findall(text)
            schema = folder or "public"
            if [(s.lower(), n) for s, n, _ in functions] != [(schema, stem)]:
                problems.append(f"{rel} must create exactly one function, {schema}.{stem}")
            for _, _, body in functions[:1]:
                bodies[(schema, stem)] = body

    cur = await conn.execute(_FUNCTIONS_SQL)
    seen: dict[tuple[str, str], int] = defaultdict(int)
    for row in await cur.fetchall():
        schema_name, name, src, secdef, config, api_may, service_may = row
        key = (str(schema_name), str(name))
        label = f"function {schema_name}.{name}"
        seen[key] += 1
        if key not in bodies:
            problems.append(f"{label} has no definition file (drop it, or add its file)")
            continue
        if seen[key] == 2:
            problems.append(f"{label} has more than one overload (drop the stale signature)")
        if src != bodies[key]:
            problems.append(f"{label} differs from its definition file")
        if not secdef or config != ['search_path=""']:
            problems.append(f"{label} must be SECURITY DEFINER with search_path = ''")
        if api_may or bool(service_may) != (schema_name == "public"):
            problems.append(f"{label} has the wrong EXECUTE grants")
    problems += [
        f"{s}.{n} is in a definition file but not in the database"
        for s, n in bodies
        if (s, n) not in seen
    ]

    cur = await conn.execute(_TRIGGERS_SQL)
    live = {str(name): _normal(str(d)) for name, d in await cur.fetchall()}
    for name in sorted(live.keys() | triggers.keys()):
        if name not in triggers:
            problems.append(f"trigger {name} has no definition file")
        elif live.get(name) != triggers[name]:
            problems.append(f"trigger {name} differs from its definition file (or is missing)")

    cur = await conn.execute(_POLICIES_SQL)
    live_policies: dict[str, set[str]] = defaultdict(set)
    for table, name in await cur.fetchall():
        live_policies[str(table)].add(str(name))
    for table in sorted(live_policies.keys() | policies.keys()):
        if live_policies[table] != policies[table]:
            problems.append(
                f"policies on public.{table} are {sorted(live_policies[table])}, "
                f"but policies/{table}.sql says {sorted(policies[table])}"
            )
    return problems
