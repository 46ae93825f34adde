"""Provider updates applied in batches: many webhooks, few database calls.

Replicate posts a `logs` update about twice a second for every running prediction, so the
webhook endpoint is the busiest one, and one database call per update is most of its cost (the
call's own overhead on both sides, and a commit each). `UpdateBatcher` gathers them, the way a
database groups commits:

- an update that arrives while fewer than `max_calls` calls are running goes out at once --
  alone, through apply_prediction, exactly as without batching (no timer, no added latency
  when the service is quiet);
- updates that arrive while the calls are busy wait for the next free call and go out
  together (at most `max_batch`) through apply_predictions, where each one still runs the same
  state machine in a subtransaction of its own.

Every caller gets its own outcome: its `Applied`, or its own error (an unknown generation
raises NotFound for that webhook only). A failed call (database down) fails the updates it
carried, and their webhooks answer 503, so Replicate sends them again. A caller that goes
away (client disconnect) does not take its update back: it is applied like the others.
Within a batch, updates are ordered by generation (two updates of one generation keep their
arrival order); apply_predictions takes its row locks in one order, so concurrent batches
cannot deadlock.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from shared.core.errors import AppError
from shared.db.port import Database
from shared.db.rpc import Applied, Update

log = logging.getLogger(__name__)
_Waiting = tuple[Update, "asyncio.Future[Applied]"]


class UpdateBatcher:
    def __init__(self, rpc: Database, *, max_batch: int = 64, max_calls: int = 2) -> None:
        if max_batch < 1 or max_calls < 1:
            raise ValueError("max_batch and max_calls must be at least 1")
        self.rpc = rpc
        self.max_batch = max_batch
        self.max_calls = max_calls
        self._pending: deque[_Waiting] = deque()
        self._calls = 0
        self._tasks: set[asyncio.Task[None]] = set()
        # What the batcher has done: calls made and updates carried (for logs and tests).
        self.calls_made = 0
        self.updates_sent = 0

    async def apply(self, update: Update) -> Applied:
        """Apply `update` (alone or with others); its outcome, or its own error."""
        future: asyncio.Future[Applied] = asyncio.get_running_loop().create_future()
        self._pending.append((update, future))
        self._start_calls()
        return await future

    async def drain(self) -> None:
        """Wait until every update handed over has been sent and answered (at shutdown, before
        the database connections close)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _start_calls(self) -> None:
        while self._pending and self._calls < self.max_calls:
            size = min(len(self._pending), self.max_batch)
            batch = [self._pending.popleft() for _ in range(size)]
            self._calls += 1
            task = asyncio.create_task(self._call(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _call(self, batch: list[_Waiting]) -> None:
        self.calls_made += 1
        self.updates_sent += len(batch)
        try:
            if len(batch) == 1:
                await self._one(*batch[0])
            else:
                await self._many(batch)
        finally:
            self._calls -= 1
            for _, future in batch:  # a safety net: no caller waits forever
                _settle(future, AppError("The update was not applied."))
        self._start_calls()  # not after a cancellation: the loop is going away

    async def _one(self, update: Update, future: asyncio.Future[Applied]) -> None:
        try:
            applied = await self.rpc.apply_update(update)
        except asyncio.CancelledError:
            _cancel([(update, future)])
            raise
        except Exception as exc:  # noqa: BLE001 (every error reaches its caller; none hangs it)
            _settle(future, exc)
        else:
            _settle(future, applied)

    async def _many(self, batch: list[_Waiting]) -> None:
        batch.sort(key=lambda waiting: waiting[0].generation_id)  # stable: arrival order kept
        try:
            outcomes = await self.rpc.apply_predictions([update for update, _ in batch])
        except asyncio.CancelledError:
            _cancel(batch)
            raise
        except Exception as exc:  # noqa: BLE001 (as in _one)
            for _, future in batch:
                _settle(future, exc)
            return
        if len(outcomes) != len(batch):
            log.error("apply_predictions answered %d of %d updates", len(outcomes), len(batch))
            for _, future in batch:
                _settle(future, AppError("The update was not applied."))
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            _settle(future, outcome)


def _settle(future: asyncio.Future[Applied], outcome: Applied | Exception) -> None:
    if future.done():  # its caller went away
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _cancel(batch: list[_Waiting]) -> None:
    for _, future in batch:
        future.cancel()
