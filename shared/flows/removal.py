"""Deleting media and accounts, and the retention window (issue 14, DESIGN §10).

The database decides what goes (one SQL call tombstones the rows and names the files); this
module removes the files and then records them gone (release_media). A removal that fails half
way leaves the paths on the rows, and the reconciliation pass's purge finishes it: the user's
request never depends on storage being up, and no file is forgotten.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from shared.core.errors import AppError
from shared.db.rpc import Rpc
from shared.provider.replicate import Provider
from shared.storage.port import Storage

log = logging.getLogger(__name__)


class AuthAdmin(Protocol):
    """Deletes sign-in accounts (adapters: shared.web.auth_admin)."""

    async def delete_user(self, user_id: uuid.UUID) -> None:
        """Delete the auth user; a user already gone is not an error."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class RetentionConfig:
    retention_days: int = 30  # 0: keep media forever (deleted generations are purged anyway)
    batch_size: int = 200
    max_batches: int = 10


@dataclass(frozen=True)
class Remover:
    rpc: Rpc
    storage: Storage
    provider: Provider
    auth_admin: AuthAdmin | None = None

    async def delete_generation(self, user_id: uuid.UUID, generation_id: uuid.UUID) -> None:
        """The owner deletes a finished generation: its files, its prompt. 404 if not theirs,
        409 while it runs (cancel it first)."""
        gen, paths = await self.rpc.delete_generation(user_id, generation_id)
        await self._remove([gen.id], paths)

    async def delete_account(self, user_id: uuid.UUID) -> None:
        """Stop what runs, forget prompts and email, remove every file, delete the auth user.
        Purchases and the ledger stay (the users row is a tombstone). Safe to call again."""
        forgotten = await self.rpc.delete_account(user_id)
        for job_id in forgotten.job_ids:
            try:
                await self.provider.cancel(job_id)
            except AppError as exc:
                # Its generation is already canceled and refunded; a late webhook changes nothing.
                log.warning("could not cancel prediction %s of a deleted account: %s", job_id, exc)
        await self._remove(forgotten.generation_ids, forgotten.paths)
        # Files no generation names (an upload whose create was then refused) go too. A
        # failure here is a 503 before the sign-in account goes, so the user can try again.
        leftovers = await self.storage.list_files(str(user_id))
        if leftovers:
            await self.storage.remove(leftovers)
        if self.auth_admin is not None:
            await self.auth_admin.delete_user(user_id)
        log.info(
            "account deleted (%d generations, %d files, %d predictions canceled)",
            len(forgotten.generation_ids),
            len(forgotten.paths) + len(leftovers),
            len(forgotten.job_ids),
            extra={"user_id": str(user_id)},
        )

    async def purge(self, config: RetentionConfig) -> Counter[str]:
        """The reconciliation pass's part: media past the retention window, and deletions whose
        file removal did not finish, in bounded batches."""
        counts: Counter[str] = Counter()
        for _ in range(config.max_batches):
            claimed = await self.rpc.claim_expired_media(
                retention_days=config.retention_days, limit=config.batch_size
            )
            if not claimed:
                break
            paths = sorted({p for _, gen_paths in claimed for p in gen_paths})
            if not await self._remove([gen.id for gen, _ in claimed], paths):
                counts["errors"] += 1
                break
            counts["media_released"] += len(claimed)
            counts["media_files_removed"] += len(paths)
            if len(claimed) < config.batch_size:
                break
        return counts

    async def _remove(self, generation_ids: Sequence[uuid.UUID], paths: Sequence[str]) -> bool:
        try:
            if paths:
                await self.storage.remove(paths)
        except AppError as exc:
            log.warning("could not remove %d files; the sweep retries: %s", len(paths), exc.detail)
            return False
        if generation_ids:
            await self.rpc.release_media(generation_ids)
        return True
