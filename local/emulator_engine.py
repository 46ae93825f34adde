"""The emulator's predictions: their lifecycle, their logs and their signed webhooks.

Each prediction runs as one asyncio task: `starting` for the first fifth of `duration_s`, then
`processing` with five tqdm-style progress lines in its logs, then `succeeded` with an MP4 URL
on the emulator (or `failed` halfway, or `aborted` before starting, as the fault dice say).

Webhooks leave through one worker task per prediction, in emission order (unless
`webhook_reorder`), so the receiver sees what Replicate would send. Like Replicate, only the
`completed` webhook is retried; start/output/logs deliveries are tried once.

Cancel-After: a prediction still unfinished at its deadline ends `aborted` if it never started
and `canceled` if it was running. That is Replicate's own split: `aborted` means "terminated
before it started" (a deadline passed in the queue), while a running prediction that runs out
of time is stopped like a cancel. A backend must treat both as "failed, refund".
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Coroutine

import httpx
from pydantic import JsonValue

from local.emulator_faults import Dice, EmulatorConfig, Faults
from local.emulator_prediction import (
    TERMINAL,
    Event,
    Outcome,
    Prediction,
    Status,
    WebhookRecord,
    now,
    progress_line,
)
from shared.web.signatures import signed_headers

log = logging.getLogger(__name__)

STARTING_SHARE = 0.2  # of duration_s spent in `starting`
LOG_UPDATES = 5
TOTAL_STEPS = 20
FAILURE_MESSAGE = "CUDA out of memory (emulated failure)"


class Engine:
    """All emulator state; lives on one event loop, between `start` and `aclose`."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.faults: Faults = config.faults
        self.predictions: dict[str, Prediction] = {}
        self._dice = Dice(config.seed)
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(self.config.webhook_timeout_s))

    async def aclose(self) -> None:
        await self._cancel_all()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def reset(self) -> None:
        """Forget every prediction and restore the configured faults and dice."""
        await self._cancel_all()
        self.predictions.clear()
        self.faults = self.config.faults
        self._dice.reset()

    def create(
        self,
        *,
        model: str,
        version: str,
        input: dict[str, JsonValue],
        base_url: str,
        webhook: str | None,
        events: frozenset[str],
        cancel_after_s: float | None,
    ) -> Prediction:
        faults = self.faults
        # Roll both dice every time so a seed replays the same faults whatever the rates.
        abort, fail = self._dice.roll(faults.abort_rate), self._dice.roll(faults.fail_rate)
        outcome: Outcome = "abort" if abort else "fail" if fail else "succeed"
        prediction = Prediction(
            id=secrets.token_hex(13),  # Replicate ids are 26 lowercase characters
            model=model,
            version=version,
            input=input,
            base_url=base_url,
            webhook=webhook,
            events=events,
            duration_s=faults.duration_s,
            output_size_bytes=faults.output_size_bytes,
        )
        self.predictions[prediction.id] = prediction
        self._emit(prediction, "start")
        prediction.task = self._spawn(self._run(prediction, outcome, cancel_after_s))
        if webhook is not None:
            self._spawn(self._deliver_all(prediction))
        return prediction

    def cancel(self, prediction: Prediction) -> None:
        """Cancel a running prediction now; a finished one is left as it is."""
        if prediction.status in TERMINAL:
            return
        self._finish(prediction, "canceled")
        if prediction.task is not None:
            prediction.task.cancel()

    # --- lifecycle ----------------------------------------------------------------------

    async def _run(self, p: Prediction, outcome: Outcome, cancel_after_s: float | None) -> None:
        try:
            async with asyncio.timeout(cancel_after_s):
                await self._work(p, outcome)
        except TimeoutError:
            self._finish(p, "aborted" if p.status == "starting" else "canceled")

    async def _work(self, p: Prediction, outcome: Outcome) -> None:
        await asyncio.sleep(p.duration_s * STARTING_SHARE)
        if outcome == "abort":
            self._finish(p, "aborted")
            return
        p.status, p.started_at = "processing", now()
        p.logs = f"Using seed: {int(p.created_at.timestamp()) % 65536}\nLoading pipeline...\n"
        self._emit(p, "logs")
        step_s = p.duration_s * (1 - STARTING_SHARE) / LOG_UPDATES
        for update in range(1, LOG_UPDATES + 1):
            await asyncio.sleep(step_s)
            done = TOTAL_STEPS * update // LOG_UPDATES
            elapsed = (now() - p.started_at).total_seconds()
            p.logs += progress_line(done, TOTAL_STEPS, elapsed) + "\n"
            self._emit(p, "logs")
            if outcome == "fail" and update == LOG_UPDATES // 2:
                p.error = FAILURE_MESSAGE
                p.logs += f"Error: {FAILURE_MESSAGE}\n"
                self._finish(p, "failed")
                return
        p.output = f"{p.base_url}/files/{p.id}.mp4"
        self._emit(p, "output")
        self._finish(p, "succeeded")

    def _finish(self, p: Prediction, status: Status) -> None:
        if p.status in TERMINAL:
            return
        p.status, p.completed_at = status, now()
        p.done.set()
        self._emit(p, "completed")
        if p.webhook is None:
            p.settled.set()
            return
        for item in p.held:  # reordered: everything held back goes after the final webhook
            p.outbox.put_nowait(item)
        p.held.clear()
        p.outbox.put_nowait(None)

    # --- webhooks -----------------------------------------------------------------------

    def _emit(self, p: Prediction, event: Event) -> None:
        if p.webhook is None or event not in p.events:
            return
        item = (event, json.dumps(p.to_json()).encode())  # the state as of now, sent later
        if self.faults.webhook_reorder and event != "completed":
            p.held.append(item)
        else:
            p.outbox.put_nowait(item)

    async def _deliver_all(self, p: Prediction) -> None:
        try:
            while (item := await p.outbox.get()) is not None:
                await self._deliver(p, *item)
        finally:
            p.settled.set()

    async def _deliver(self, p: Prediction, event: str, body: bytes) -> None:
        faults = self.faults
        if self._dice.roll(faults.webhook_drop_rate):
            p.webhooks.append(WebhookRecord(event, "dropped"))
            return
        copies = 2 if self._dice.roll(faults.webhook_duplicate_rate) else 1
        for _ in range(copies):
            if faults.webhook_delay_s:
                await asyncio.sleep(faults.webhook_delay_s)
            p.webhooks.append(await self._post(p, event, body))

    async def _post(self, p: Prediction, event: str, body: bytes) -> WebhookRecord:
        if p.webhook is None or self._http is None:
            raise RuntimeError("webhook delivery needs a webhook URL and a started engine")
        # Each delivery is its own message (duplicates included); retries keep the id.
        msg_id = f"msg_{secrets.token_hex(12)}"
        record = WebhookRecord(event, "failed", msg_id=msg_id)
        delays = self.config.webhook_retry_delays_s if event == "completed" else ()
        for delay in (0.0, *delays):
            await asyncio.sleep(delay)
            record.attempts += 1
            headers = signed_headers(self.config.webhook_secret, msg_id, int(time.time()), body)
            headers["content-type"] = "application/json"
            try:
                response = await self._http.post(p.webhook, content=body, headers=headers)
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                log.info("webhook %s for %s: %s", event, p.id, exc)
                record.status_code = None
                continue
            record.status_code = response.status_code
            if response.is_success:
                record.outcome = "delivered"
                break
        return record

    # --- tasks --------------------------------------------------------------------------

    def _spawn(self, work: Coroutine[None, None, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._reap)
        return task

    def _reap(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("emulator task failed", exc_info=exc)

    async def _cancel_all(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
