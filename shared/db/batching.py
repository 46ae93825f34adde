"""Database calls in batches: many requests, few calls.

Two endpoints are hot enough that one database call per request is most of their cost (the
call's own overhead on both sides, and for updates a commit each): the webhook, because
Replicate posts a `logs` update about twice a second for every running prediction, and GET
status, because every open tab polls it. A `Batcher` gathers their calls, the way a database
groups commits:

- an item that arrives while fewer than `max_calls` calls are running goes out at once --
  alone, through the single-item function (apply_prediction, read_generation), exactly as
  without batching (no timer, no added latency when the service is quiet);
- items that arrive while the calls are busy wait for the next free call and go out together
  (at most `max_batch`) through the batch function (apply_predictions, read_generations),
  which answers each item on its own.

Every caller gets its own outcome: its answer, or its own error (an unknown generation raises
NotFound for that request only). A failed call (database down) fails the items it carried, and
their requests answer 503 (Replicate sends a webhook again; a tab polls again). A caller that
goes away (client disconnect) does not take its item back: it is sent like the others.
Within a batch, items are ordered by generation (two updates of one generation keep their
arrival order); the batch functions take their row locks in that order, so concurrent batches
cannot deadlock.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from shared.core.domain import Generation
from shared.core.errors import AppError
from shared.db.port import Database
from shared.db.rpc import Applied, Read, Update

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Sends items through `one` (alone) or `many` (together, in `order`); see the module doc.
    `name` (the batch function's) is for the log."""

    def __init__(
        self,
        one: Callable[[T], Awaitable[R]],
        many: Callable[[list[T]], Awaitable[Sequence[R | AppError]]],
        *,
        order: Callable[[T], uuid.UUID],
        name: str,
        max_batch: int,
        max_calls: int,
    ) -> None:
        if max_batch < 1 or max_calls < 1:
            raise ValueError("max_batch and max_calls must be at least 1")
        self._one_call = one
        self._many_call = many
        self._order = order
        self._name = name
        self.max_batch = max_batch
        self.max_calls = max_calls
        self._pending: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._calls = 0
        self._tasks: set[asyncio.Task[None]] = set()
        # What the batcher has done: calls made and items carried (for logs and tests).
        self.calls_made = 0
        self.items_sent = 0

    async def submit(self, item: T) -> R:
        """Send `item` (alone or with others); its outcome, or its own error."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._start_calls()
        return await future

    async def drain(self) -> None:
        """Wait until every item handed over has been sent and answered (at shutdown, before
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

    async def _call(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        self.calls_made += 1
        self.items_sent += len(batch)
        try:
            if len(batch) == 1:
                await self._one(*batch[0])
            else:
                await self._many(batch)
        finally:
            self._calls -= 1
            for _, future in batch:  # a safety net: no caller waits forever
                _settle(future, AppError(f"The request was not answered ({self._name})."))
        self._start_calls()  # not after a cancellation: the loop is going away

    async def _one(self, item: T, future: asyncio.Future[R]) -> None:
        try:
            outcome = await self._one_call(item)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 (every error reaches its caller; none hangs it)
            _settle(future, exc)
        else:
            _settle(future, outcome)

    async def _many(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        batch.sort(key=lambda waiting: self._order(waiting[0]))  # stable: arrival order kept
        try:
            outcomes = await self._many_call([item for item, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 (as in _one)
            for _, future in batch:
                _settle(future, exc)
            return
        if len(outcomes) != len(batch):
            log.error("%s answered %d of %d items", self._name, len(outcomes), len(batch))
            for _, future in batch:
                _settle(future, AppError(f"The request was not answered ({self._name})."))
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            _settle(future, outcome)


def _settle(future: asyncio.Future[R], outcome: R | Exception) -> None:
    if future.done():  # its caller went away
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


class UpdateBatcher(Batcher[Update, Applied]):
    """Provider updates: apply_prediction alone, apply_predictions together (the webhook).
    The limits come from settings (update_batch_max, update_batch_calls), never a default here."""

    def __init__(self, rpc: Database, *, max_batch: int, max_calls: int) -> None:
        super().__init__(
            rpc.apply_update,
            rpc.apply_predictions,
            order=lambda update: update.generation_id,
            name="apply_predictions",
            max_batch=max_batch,
            max_calls=max_calls,
        )

    async def apply(self, update: Update) -> Applied:
        """Apply `update` (alone or with others); its outcome, or its own error."""
        return await self.submit(update)


class ReadBatcher(Batcher[Read, tuple[Generation, bool]]):
    """Status reads: read_generation alone, read_generations together (GET status). Every read
    of one batcher has the same polling limits: its Lifecycle's (shared.flows.lifecycle)."""

    def __init__(
        self,
        rpc: Database,
        *,
        poll_after_s: int,
        max_polls: int,
        max_batch: int,
        max_calls: int,
    ) -> None:
        async def one(read: Read) -> tuple[Generation, bool]:
            user_id, generation_id = read
            return await rpc.read_generation(
                user_id, generation_id, poll_after_s=poll_after_s, max_polls=max_polls
            )

        async def many(reads: list[Read]) -> list[tuple[Generation, bool] | AppError]:
            return await rpc.read_generations(reads, poll_after_s=poll_after_s, max_polls=max_polls)

        super().__init__(
            one,
            many,
            order=lambda read: read[1],
            name="read_generations",
            max_batch=max_batch,
            max_calls=max_calls,
        )
