"""The orchestration of a generation's life, over ports (database, provider) and nothing else.

Every rule about credits and status is a SQL function; this module only decides which one to
call, in which order, and what to tell the caller. See DESIGN §4 for the flows.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING

from pydantic import ConfigDict

from shared.core.domain import Generation, GenerationAsk, NewGeneration
from shared.core.errors import AppError, BudgetExhausted, ProviderError, ProviderUnavailable
from shared.db.rpc import Applied, Created, Update

if TYPE_CHECKING:
    # Types only: the webhook's Updates needs no catalog or provider module at run time.
    from shared.core.catalog import Catalog
    from shared.db.batching import ReadBatcher, UpdateBatcher
    from shared.db.port import Database
    from shared.provider.replicate import Prediction, Provider

log = logging.getLogger(__name__)


class SubmitRequest(GenerationAsk):
    """A validated request to make a video (text-to-video, image-to-video or a retry): what the
    new generation asks, and what only the submission uses."""

    model_config = ConfigDict(extra="forbid")

    seed: int | None = None
    aspect_ratio: str | None = None
    input_digest: str | None = None
    # What the provider receives for the image (a data URL or a signed URL), if any.
    image_ref: str | None = None


_ASKED = set(GenerationAsk.model_fields)
# A retry asks again what the old generation asked, for the caller, under the caller's own
# idempotency key and pointing back to the old one.
_ASKED_AGAIN = _ASKED - {"user_id", "idempotency_key", "retry_of"}


@dataclass(frozen=True)
class Lifecycle:
    rpc: Database
    provider: Provider
    catalog: Catalog
    webhook_base_url: str
    # From settings (max_active_generations, status_poll_after_s, status_max_polls): no second
    # default here or in SQL.
    max_active: int
    poll_after_s: int
    max_polls: int
    # How a retry shows the provider a stored input image again (a signed storage URL).
    image_ref_for: Callable[[str], Awaitable[str]] | None = None
    # Gathers concurrent provider updates into few database calls (None: one call each).
    batcher: UpdateBatcher | None = None
    # Status reads arriving together share database calls (settings' read_batch_max and
    # read_batch_calls; None: one read_generation call each). The batcher is built from this
    # lifecycle's own polling limits (`_reads`), so a copy with other limits reads with them.
    read_batch: tuple[int, int] | None = None
    # Guardrails (issue 14): creates per user per rolling minute, and the provider's daily
    # budget in USD (None: no limit / no guard).
    rate_per_minute: int | None = None
    daily_budget_usd: float | None = None

    def webhook_url(self, generation_id: uuid.UUID) -> str:
        sep = "&" if "?" in self.webhook_base_url else "?"
        return f"{self.webhook_base_url}{sep}generation_id={generation_id}"

    async def submit(
        self, req: SubmitRequest, *, keep_image: Callable[[], Awaitable[str]] | None = None
    ) -> Created:
        """Reserve the credits, start the prediction, record its id.

        `keep_image` stores the request's input image and returns what the provider receives
        for it; it runs only once the generation is created and charged, so a request refused
        (no credits, a limit, a replay) stores nothing.

        A replayed Idempotency-Key returns the stored generation without touching the provider.
        If the image cannot be kept, or the provider refuses or is down, the generation is
        failed and refunded in one call and the error says so (`refunded: true`, `balance`).
        """
        offering = self.catalog.lookup(req.kind, req.model, req.resolution)
        params: dict[str, str | int | None] = {}
        if req.seed is not None:
            params["seed"] = req.seed
        if req.aspect_ratio:
            params["aspect_ratio"] = req.aspect_ratio
        new = NewGeneration(
            **req.model_dump(include=_ASKED),
            cost=offering.cost,
            params=dict(params),
            input_digest=req.input_digest,
            price_per_s=offering.price_per_s,
        )
        try:
            created = await self.rpc.create_generation(
                new,
                max_active=self.max_active,
                rate_per_minute=self.rate_per_minute,
                daily_budget_usd=self.daily_budget_usd,
            )
        except BudgetExhausted:
            # The operator must see this: every create is refused until spend ages out.
            log.warning(
                "create refused: provider daily budget reached (%s USD)", self.daily_budget_usd
            )
            raise
        gen = created.generation
        if created.replayed:
            return created

        image_ref = req.image_ref
        if keep_image is not None:
            try:
                image_ref = await keep_image()
            except AppError as exc:
                failed = await self.rpc.fail_submission(
                    gen.id, f"The input image could not be kept: {exc.detail}"
                )
                log.warning("input image not kept", extra={"generation_id": str(gen.id)})
                raise _refunded(exc, failed) from exc
        model_input = self.catalog.build_input(
            offering,
            prompt=req.prompt,
            negative_prompt=req.negative_prompt,
            seed=req.seed,
            aspect_ratio=req.aspect_ratio,
            image=image_ref,
        )
        try:
            prediction = await self.provider.create(offering, model_input, self.webhook_url(gen.id))
        except (ProviderError, ProviderUnavailable) as exc:
            failed = await self.rpc.fail_submission(
                gen.id, f"The video provider did not accept it: {exc.detail}"
            )
            if not failed.generation.is_terminal or failed.generation.status == "completed":
                # The create timed out, yet the prediction exists: its webhook got here first
                # and the generation lives on. The caller gets it, not an error.
                log.warning(
                    "provider create failed but its prediction reported in",
                    extra={"generation_id": str(gen.id)},
                )
                return replace(created, generation=failed.generation)
            log.warning("provider create failed", extra={"generation_id": str(gen.id)})
            raise _refunded(exc, failed) from exc

        applied = await self.rpc.mark_submitted(gen.id, prediction.id)
        if applied.generation.job_id != prediction.id:
            # The row moved on without this prediction (swept as failed, or canceled by the
            # user in the meantime): nobody will pay for it, so stop it.
            await self._cancel_orphan(prediction.id, gen.id)
        return replace(created, generation=applied.generation)

    async def apply_update(
        self, generation_id: uuid.UUID, prediction: Prediction, *, source: str
    ) -> Applied:
        """Apply what the provider says; `source` names the path (webhook, poll, sweep, cancel).
        Duplicates and stale updates are harmless: the state machine ignores them."""
        return await apply_prediction(
            self.rpc, generation_id, prediction, source=source, batcher=self.batcher
        )

    async def read(self, user_id: uuid.UUID, generation_id: uuid.UUID) -> Generation:
        """The owner's generation. If it runs and nothing was heard for a while, ask the provider
        once (the claim is atomic: many open tabs cause one lookup; the count is capped)."""
        if self._reads is not None:
            gen, claimed = await self._reads.submit((user_id, generation_id))
        else:
            gen, claimed = await self.rpc.read_generation(
                user_id, generation_id, poll_after_s=self.poll_after_s, max_polls=self.max_polls
            )
        if not claimed or gen.job_id is None:
            return gen
        try:
            prediction = await self.provider.get(gen.job_id)
        except AppError as exc:
            log.warning("status poll failed: %s", exc.detail, extra={"generation_id": str(gen.id)})
            return gen
        return (await self.apply_update(gen.id, prediction, source="poll")).generation

    @cached_property
    def _reads(self) -> ReadBatcher | None:
        if self.read_batch is None:
            return None
        from shared.db.batching import ReadBatcher

        max_batch, max_calls = self.read_batch
        return ReadBatcher(
            self.rpc,
            poll_after_s=self.poll_after_s,
            max_polls=self.max_polls,
            max_batch=max_batch,
            max_calls=max_calls,
        )

    async def drain(self) -> None:
        """Wait for the status reads in flight (at shutdown, before the database closes)."""
        if "_reads" in self.__dict__ and self._reads is not None:  # built by a first read
            await self._reads.drain()

    async def cancel(self, user_id: uuid.UUID, generation_id: uuid.UUID) -> Generation:
        """Stop a queued or running generation; it ends canceled and refunded once, whether the
        provider's cancel webhook arrives or not (the sweeper finishes what this cannot)."""
        requested = await self.rpc.request_cancel(user_id, generation_id)
        gen = requested.generation
        if gen.is_terminal or gen.job_id is None:
            return gen
        try:
            prediction = await self.provider.cancel(gen.job_id)
        except AppError as exc:
            log.warning(
                "provider cancel failed; the sweeper retries: %s",
                exc.detail,
                extra={"generation_id": str(gen.id)},
            )
            return gen
        return (await self.apply_update(gen.id, prediction, source="cancel")).generation

    async def retry(
        self,
        user_id: uuid.UUID,
        generation_id: uuid.UUID,
        *,
        idempotency_key: str | None,
        image_ref: str | None = None,
    ) -> Created:
        """Submit a failed or canceled generation again: a new generation, a new charge."""
        # create_generation refuses (409) unless `old` is this user's failed or canceled one.
        old = await self.rpc.get_generation(user_id, generation_id)
        if image_ref is None and old.input_image_path and self.image_ref_for is not None:
            image_ref = await self.image_ref_for(old.input_image_path)
        seed = old.params.get("seed")
        aspect = old.params.get("aspect_ratio")
        return await self.submit(
            SubmitRequest(
                **old.model_dump(include=_ASKED_AGAIN),
                user_id=user_id,
                seed=seed if isinstance(seed, int) else None,
                aspect_ratio=aspect if isinstance(aspect, str) else None,
                image_ref=image_ref,
                idempotency_key=idempotency_key,
                retry_of=old.id,
            )
        )

    async def _cancel_orphan(self, job_id: str, generation_id: uuid.UUID) -> None:
        try:
            await self.provider.cancel(job_id)
        except AppError:
            log.warning(
                "could not cancel orphaned prediction %s",
                job_id,
                extra={"generation_id": str(generation_id)},
            )


async def apply_prediction(
    db: Database,
    generation_id: uuid.UUID,
    prediction: Prediction,
    *,
    source: str,
    batcher: UpdateBatcher | None = None,
) -> Applied:
    """Apply what the provider says of one generation; through `batcher` when given (the
    webhook), so concurrent updates share database calls. `source` names the path."""
    update = Update(
        generation_id,
        prediction.our_status,
        job_id=prediction.id,
        progress=prediction.progress,
        video_url=prediction.video_url,
        error=prediction.error_message,
        source=source,
        predict_time=prediction.predict_time,
    )
    if batcher is not None:
        return await batcher.apply(update)
    return await db.apply_update(update)


@dataclass(frozen=True)
class Updates:
    """The webhook's part of the lifecycle: apply provider updates, nothing else (it needs no
    provider client)."""

    db: Database
    batcher: UpdateBatcher | None = None

    async def apply(
        self, generation_id: uuid.UUID, prediction: Prediction, *, source: str
    ) -> Applied:
        return await apply_prediction(
            self.db, generation_id, prediction, source=source, batcher=self.batcher
        )

    async def drain(self) -> None:
        if self.batcher is not None:
            await self.batcher.drain()


def _refunded(exc: AppError, failed: Applied) -> AppError:
    """`exc` again, saying that the generation was failed and its credits returned, with the
    balance read in the same call that refunded them (under the user's lock)."""
    gen = failed.generation
    return type(exc)(
        f"{exc.detail} Your {gen.cost} credits were returned.",
        headers=exc.headers,
        **exc.extra,
        generation_id=str(gen.id),
        refunded=True,
        balance=failed.balance,
    )
