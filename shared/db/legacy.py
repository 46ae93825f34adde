"""Databases migrated with the files from before the SQL baseline.

Until the definitions moved to migrations/definitions/, migrations 0001-0008 held both the tables
and every function body. They were squashed into 0001_baseline.sql (the same tables, columns and
indexes) and one file per function. A database that applied all eight old files has exactly the
baseline's tables, so it is upgraded in place: its old functions are dropped, its record says
0001_baseline, and every definition is applied afresh (in the same transaction). Anything else
that carries old records (a partial run, an edited file) cannot be trusted to match and gets one
message saying how to start again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.core.errors import ConfigurationError

if TYPE_CHECKING:
    import psycopg

# version -> sha256 of the old files, as recorded in app_migrations.applied.
LEGACY_CHECKSUMS = {
    "0001": "254f117063d8e7a9142451ad93431823c587f940574567f918368530bcc9be7a",
    "0002": "009ed4a917b8cba5aaf27437b01e930d82db86151b1fd7db5ae0c032c949c416",
    "0003": "802c8020129742908baf57919b25ca3f1a40781560e0d6d115c9be946b96cbca",
    "0004": "6d2251404c044577ad415c66599eee1dc03acf17138f776a635bdcb3e4d95bc5",
    "0005": "ceed5e5513cb07bfc97d889ea9c5b223492613fd7c83232ea8221b06536c79ac",
    "0006": "3453e38de5d8b5077fd59c24c38b50a1a8fa59de0c6c781c9c630bb7f28e6ff0",
    "0007": "4e61d8bb9ee910b4c42f83a31d8b9bfba05af293a751e5101422afd9228f6082",
    "0008": "4d8786d60216cdb0adc8355f3c01007eadf2dd3460d149506b8d1f529b5df2b1",
}
# The new versioned file the old ones became.
SQUASHED_INTO = "0001"
# Every function the old files created (signatures as they were); dropped on upgrade so that no
# stale overload or removed helper survives. CASCADE takes the signup trigger with its function.
_LEGACY_FUNCTIONS = (
    "private.status_rank(text)",
    "private.raise_generation_not_found()",
    "private.post_ledger(uuid, integer, text, uuid, text)",
    "private.refund(uuid, text)",
    "private.handle_new_user()",
    "public.deduct_credits(uuid, integer, uuid)",
    "public.add_credits(uuid, integer, text, text)",
    "public.refund_credits(uuid)",
    "public.create_generation(uuid, text, text, text, text, integer, text, jsonb, text, text, "
    "text, integer, uuid)",
    "public.mark_submitted(uuid, text)",
    "public.apply_prediction(uuid, text, text, integer, text, text)",
    "public.apply_predictions(jsonb)",
    "public.request_cancel(uuid, uuid)",
    "public.claim_stale_generations(integer, integer)",
    "public.set_video_path(uuid, text)",
    "public.get_generation(uuid, uuid)",
    "public.fail_submission(uuid, text)",
    "public.read_generation(uuid, uuid, integer, integer)",
    "public.list_generations(uuid, integer, timestamptz, uuid)",
    "public.get_credits(uuid, integer)",
    "public.claim_pending_copies(integer, integer, integer, integer)",
    "public.record_copy_failure(uuid, text, boolean)",
)

RESET_HINT = (
    "Reset a local database and migrate again: stop `wanctl dev`, `rm -rf .local/pgdata`, then "
    "`wanctl migrate` (tests: `rm -rf .local/test-pgdata`). A shared database needs a fresh "
    "one (or its tables moved aside) before `wanctl migrate --database-url URL`."
)


def legacy_state(done: dict[str, str]) -> bool:
    """True when `done` (version -> checksum) is exactly a database migrated with all the old
    files (plus, possibly, later versions); raise when it holds only some of them."""
    old = {v for v, c in done.items() if LEGACY_CHECKSUMS.get(v) == c}
    if not old:
        return False
    if old != set(LEGACY_CHECKSUMS):
        raise ConfigurationError(
            "this database was partly migrated with the migration files from before the SQL "
            f"baseline (versions {', '.join(sorted(old))} of 0001-0008); it cannot be upgraded "
            "in place. " + RESET_HINT
        )
    return True


async def upgrade_legacy(
    conn: psycopg.AsyncConnection[tuple[object, ...]], baseline_name: str, baseline_checksum: str
) -> None:
    """Drop the old functions and record the old files as the baseline; the caller applies
    every definition next, in the same transaction."""
    for signature in _LEGACY_FUNCTIONS:
        await conn.execute(f"drop function if exists {signature} cascade".encode())
    await conn.execute(
        "delete from app_migrations.applied where version = any(%s)", (list(LEGACY_CHECKSUMS),)
    )
    await conn.execute(
        "insert into app_migrations.applied (version, name, checksum) values (%s, %s, %s)",
        (SQUASHED_INTO, baseline_name, baseline_checksum),
    )
    await conn.execute("delete from app_migrations.definitions")
