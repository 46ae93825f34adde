"""The composition root: what each Modal function (and the dev server) opens, built once from
settings at startup, never at import, and never changed after construction.

Each builder is an async context manager that opens EXACTLY what its endpoint group or job uses
(status opens no video-copy client and no update batcher; only the webhook, the copy job and
the sweep open the copier) and closes it in reverse order on exit. Web builders yield a
`Registry` (the group's frozen services plus the authenticator, by type) that
`shared.web.app.create_app` puts on the app; job builders yield their services directly.

Heavy client libraries (supabase, replicate, psycopg's pool, httpx, Pillow) are imported inside
the builders that need them, so a function's cold start pays only for what it uses.
cosmicpython's bootstrap.py is the model: ports are passed in (Modal passes its copy
scheduler), production adapters are the default.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from shared.core.clock import Clock, SystemClock

if TYPE_CHECKING:
    import httpx

    from shared.core.catalog import Catalog
    from shared.core.config import Settings
    from shared.core.domain import Generation
    from shared.db.batching import UpdateBatcher
    from shared.db.port import Database
    from shared.db.rpc import Rpc, Transport
    from shared.flows.inputs import InputImages
    from shared.flows.keeper import Keeper
    from shared.flows.lifecycle import Lifecycle, Updates
    from shared.flows.links import VideoLinks
    from shared.flows.purchases import Purchases
    from shared.flows.reconcile import Reconciler
    from shared.flows.removal import AuthAdmin, Remover
    from shared.flows.scheduling import CopyScheduler
    from shared.payments.gateway import PaymentGateway
    from shared.provider.replicate import Provider
    from shared.storage.port import Storage
    from shared.web.app import ServicesOpener
    from shared.web.auth import Authenticator
    from shared.web.registry import Registry


# --- what each endpoint group and job uses ---------------------------------------------------


@dataclass(frozen=True)
class SubmitServices:
    """POST text-to-video."""

    lifecycle: Lifecycle


@dataclass(frozen=True)
class UploadServices:
    """POST image-to-video: the lifecycle plus where input images go."""

    lifecycle: Lifecycle
    inputs: InputImages
    max_upload_bytes: int


@dataclass(frozen=True)
class StatusServices:
    """GET status: read (and poll when overdue), and link the kept video."""

    lifecycle: Lifecycle
    links: VideoLinks


@dataclass(frozen=True)
class ControlServices:
    """Cancel, retry, history, credits."""

    lifecycle: Lifecycle
    links: VideoLinks
    db: Database
    catalog: Catalog
    low_balance_threshold: int


@dataclass(frozen=True)
class PaymentServices:
    """Credit packs, checkout and purchases (in the controls group): the purchase flow."""

    purchases: Purchases


@dataclass(frozen=True)
class StripeWebhookServices:
    """Stripe's webhook: verify the signature, apply the event once."""

    webhook_secret: str
    purchases: Purchases
    clock: Clock


@dataclass(frozen=True)
class AccountServices:
    """DELETE a generation or the whole account."""

    remover: Remover


@dataclass(frozen=True)
class AdminServices:
    """The operator's numbers (GET /api/admin/stats)."""

    db: Rpc
    settings: Settings


@dataclass(frozen=True)
class WebhookServices:
    """Replicate's webhook: verify, apply (batched), hand completed videos to the copier."""

    webhook_secret: str
    updates: Updates
    schedule_copy: CopyScheduler
    clock: Clock


@dataclass(frozen=True)
class SweepServices:
    """The reconciliation pass (the Modal schedule, `wanctl sweep`, the dev server's loop)."""

    lifecycle: Lifecycle
    keeper: Keeper
    reconciler: Reconciler
    remover: Remover
    purchases: Purchases


# --- the parts, each opened on a stack that closes it ----------------------------------------


class _Parts:
    """Opens each part at most once, on `stack`; the builders take only the parts they need."""

    def __init__(self, settings: Settings, stack: AsyncExitStack) -> None:
        self.settings = settings
        self._stack = stack
        self._db: Rpc | None = None
        self._auth_admin: AuthAdmin | None = None
        self._provider: Provider | None = None
        self._storage: Storage | None = None
        self._http: httpx.AsyncClient | None = None
        self._purchases: Purchases | None = None
        self._gateway: PaymentGateway | None = None

    async def db(self) -> Database:
        return await self.rpc()

    async def rpc(self) -> Rpc:
        """The gateway itself, for the few callers that use more than the Database port."""
        if self._db is None:
            from shared.db.rpc import Rpc

            rpc = Rpc(await open_transport(self.settings))
            self._stack.push_async_callback(rpc.aclose)
            self._db = rpc
        return self._db

    def auth_admin(self) -> AuthAdmin:
        if self._auth_admin is None:
            from shared.web.auth_admin import open_auth_admin

            admin = open_auth_admin(self.settings)
            self._stack.push_async_callback(admin.aclose)
            self._auth_admin = admin
        return self._auth_admin

    async def remover(self) -> Remover:
        from shared.flows.removal import Remover

        return Remover(
            rpc=await self.rpc(),
            storage=self.storage(),
            provider=self.provider(),
            auth_admin=self.auth_admin(),
        )

    async def purchases(self) -> Purchases:
        """The purchase flow: packs, the Stripe gateway, the payment SQL functions (on the
        same transport as the rest)."""
        if self._purchases is None:
            from shared.core.ratelimit import RateLimiter
            from shared.db.purchases import PurchaseStore
            from shared.flows.purchases import PurchaseConfig, Purchases
            from shared.payments.packs import load_packs

            s = self.settings
            assert s.checkout_success_url is not None
            assert s.checkout_cancel_url is not None
            rate = s.stripe_rate_per_s
            self._purchases = Purchases(
                PurchaseStore((await self.rpc()).transport),
                # Stripe's client opens with the first call that needs Stripe (a checkout, or a
                # check of a purchase left pending): most requests of the groups holding this
                # flow (packs, history, webhooks) never do.
                cast("PaymentGateway", _OnFirstUse(self.payment_gateway)),
                load_packs(s.credit_packs),
                RateLimiter(rate, burst=min(5, max(1, int(rate)))),
                config=PurchaseConfig(
                    success_url=s.checkout_success_url,
                    cancel_url=s.checkout_cancel_url,
                    reconcile_after_s=s.purchase_reconcile_after_s,
                    checkout_expires_s=s.checkout_expires_s,
                    reconcile_batch=s.purchase_reconcile_batch,
                    rate_per_minute=s.create_rate_per_minute,
                ),
            )
        return self._purchases

    def payment_gateway(self) -> PaymentGateway:
        if self._gateway is None:
            from shared.payments.gateway import StripeGateway

            gateway = StripeGateway.from_settings(self.settings)
            self._stack.push_async_callback(gateway.aclose)
            self._gateway = gateway
        return self._gateway

    def provider(self) -> Provider:
        if self._provider is None:
            from shared.provider.replicate import ReplicateProvider

            provider = ReplicateProvider.from_settings(self.settings)
            self._stack.push_async_callback(provider.aclose)
            self._provider = provider
        return self._provider

    def storage(self) -> Storage:
        if self._storage is None:
            storage = open_storage(self.settings)
            self._stack.push_async_callback(storage.aclose)
            self._storage = storage
        return self._storage

    def http(self) -> httpx.AsyncClient:
        """The video copier's client (long timeout: a copy may take minutes)."""
        if self._http is None:
            import httpx

            from shared.core.http import async_client

            client = async_client(
                timeout=httpx.Timeout(self.settings.output_copy_timeout_s, connect=10.0),
                follow_redirects=True,
            )
            self._stack.push_async_callback(client.aclose)
            self._http = client
        return self._http

    def catalog(self) -> Catalog:
        from shared.core.catalog import load_catalog

        return load_catalog(self.settings.catalog_overrides)

    async def lifecycle(
        self,
        *,
        batcher: UpdateBatcher | None = None,
        provider_on_first_use: bool = False,
        batch_reads: bool = False,
    ) -> Lifecycle:
        """`provider_on_first_use`: for groups whose usual request never calls the provider
        (status polls only an overdue generation; controls call it to cancel or retry), so
        their cold start does not pay for the replicate client and httpx. `batch_reads`: status
        reads that arrive together share database calls (shared.db.batching); the reads in
        flight finish before the database closes."""
        from shared.flows.lifecycle import Lifecycle

        s = self.settings
        assert s.public_webhook_url is not None
        db = await self.db()
        provider: Provider = (
            cast("Provider", _OnFirstUse(self.provider))
            if provider_on_first_use
            else self.provider()
        )
        lifecycle = Lifecycle(
            rpc=db,
            provider=provider,
            catalog=self.catalog(),
            webhook_base_url=s.public_webhook_url,
            max_active=s.max_active_generations,
            poll_after_s=s.status_poll_after_s,
            max_polls=s.status_max_polls,
            # Storage opens with the first retry of an image-to-video (text-to-video never).
            image_ref_for=lambda path: self.storage().signed_url(path, s.input_url_ttl_s),
            batcher=batcher,
            read_batch=(s.read_batch_max, s.read_batch_calls) if batch_reads else None,
            rate_per_minute=s.create_rate_per_minute,
            daily_budget_usd=s.provider_daily_budget_usd,
        )
        self._stack.push_async_callback(lifecycle.drain)  # closes before the database
        return lifecycle

    def links(self) -> VideoLinks:
        from shared.flows.links import VideoLinks

        return VideoLinks(self.storage(), self.settings.signed_url_ttl_s)

    async def keeper(self) -> Keeper:
        from shared.flows.keeper import Keeper

        s = self.settings
        return Keeper(
            rpc=await self.db(),
            storage=self.storage(),
            client=self.http(),
            max_bytes=s.max_output_bytes,
            timeout_s=s.output_copy_timeout_s,
            retry_after_s=s.copy_retry_after_s,
            max_attempts=s.copy_max_attempts,
            concurrency=s.copy_concurrency,
        )


class _OnFirstUse:
    """A port whose adapter opens on its first call: `open_part` is one of the parts' idempotent
    openers, whose stack closes what it opened (so closing this closes nothing). Attribute
    access is the whole protocol, so no signature is written twice."""

    def __init__(self, open_part: Callable[[], object]) -> None:
        self._open = open_part

    def __getattr__(self, name: str) -> object:
        return getattr(self._open(), name)

    async def aclose(self) -> None:
        """Nothing of its own to close (and no reason to open the part just to close it)."""


@asynccontextmanager
async def _web(settings: Settings) -> AsyncIterator[tuple[_Parts, Authenticator]]:
    """Every web group: check all settings at once (one message naming every missing one)."""
    from shared.web.auth import Authenticator

    settings.require_api()
    authenticator = Authenticator.from_settings(settings)
    await authenticator.start()  # a JWKS without keys fails here, not on every request
    async with AsyncExitStack() as stack:
        yield _Parts(settings, stack), authenticator


def _registry(*objects: object) -> Registry:
    return {type(o): o for o in objects}


# --- builders, one per endpoint group and job ------------------------------------------------


async def _submit(parts: _Parts) -> SubmitServices:
    return SubmitServices(await parts.lifecycle())


async def _upload(parts: _Parts) -> UploadServices:
    from shared.flows.inputs import InputImages

    s = parts.settings
    return UploadServices(
        await parts.lifecycle(), InputImages(parts.storage(), s.input_url_ttl_s), s.max_upload_bytes
    )


async def _status(parts: _Parts) -> StatusServices:
    return StatusServices(
        await parts.lifecycle(provider_on_first_use=True, batch_reads=True), parts.links()
    )


async def _controls(parts: _Parts) -> ControlServices:
    return ControlServices(
        lifecycle=await parts.lifecycle(provider_on_first_use=True),
        links=parts.links(),
        db=await parts.db(),
        catalog=parts.catalog(),
        low_balance_threshold=parts.settings.low_balance_threshold,
    )


async def _payments(parts: _Parts) -> PaymentServices:
    return PaymentServices(await parts.purchases())


async def _stripe_webhook(parts: _Parts) -> StripeWebhookServices:
    secret = parts.settings.stripe_webhook_secret
    assert secret is not None
    return StripeWebhookServices(secret.get_secret_value(), await parts.purchases(), SystemClock())


async def _account(parts: _Parts) -> AccountServices:
    return AccountServices(await parts.remover())


async def _admin(parts: _Parts) -> AdminServices:
    return AdminServices(await parts.rpc(), parts.settings)


async def _webhook(
    parts: _Parts, drains: AsyncExitStack, schedule_copy: CopyScheduler | None
) -> WebhookServices:
    """`drains` closes before `parts`: pending updates and copies finish while their clients
    are still open."""
    from shared.db.batching import UpdateBatcher
    from shared.flows.lifecycle import Updates

    s = parts.settings
    assert s.replicate_webhook_secret is not None
    db = await parts.db()
    if schedule_copy is None:
        from shared.flows.scheduling import BackgroundScheduler

        async def keep(gen: Generation) -> bool:
            # The copier (its HTTP client, the keeper) opens with the first copy: that runs in
            # the background, so no reply waits for it, and a cold start does not either.
            return await (await parts.keeper()).keep(gen)

        background = BackgroundScheduler(keep)
        drains.push_async_callback(background.drain)
        schedule_copy = background
    batcher = UpdateBatcher(db, max_batch=s.update_batch_max, max_calls=s.update_batch_calls)
    updates = Updates(db, batcher)
    drains.push_async_callback(updates.drain)
    return WebhookServices(
        webhook_secret=s.replicate_webhook_secret.get_secret_value(),
        updates=updates,
        schedule_copy=schedule_copy,
        clock=SystemClock(),
    )


def _group(*makes: Callable[[_Parts], Awaitable[object]]) -> ServicesOpener:
    """The builder of one authenticated endpoint group: its services and the authenticator."""

    @asynccontextmanager
    async def build(settings: Settings) -> AsyncIterator[Registry]:
        async with _web(settings) as (parts, auth):
            yield _registry(*[await make(parts) for make in makes], auth)

    return build


text_to_video = _group(_submit)
image_to_video = _group(_upload)
status = _group(_status)
controls = _group(_controls, _payments)
account = _group(_account)
admin = _group(_admin)


def webhook(schedule_copy: CopyScheduler | None = None) -> ServicesOpener:
    """The webhook's builder; on Modal `schedule_copy` spawns the copy function, otherwise the
    copy runs as a background task of this process."""

    @asynccontextmanager
    async def build(settings: Settings) -> AsyncIterator[Registry]:
        settings.require_api()
        async with AsyncExitStack() as stack, AsyncExitStack() as drains:
            yield _registry(await _webhook(_Parts(settings, stack), drains, schedule_copy))

    return build


@asynccontextmanager
async def stripe_webhook(settings: Settings) -> AsyncIterator[Registry]:
    """Stripe's webhook (its own function: payments never wait behind generation webhooks)."""
    settings.require_api()
    async with AsyncExitStack() as stack:
        yield _registry(await _stripe_webhook(_Parts(settings, stack)))


@asynccontextmanager
async def every_group(settings: Settings) -> AsyncIterator[Registry]:
    """The local dev server: every group in one process, sharing one set of clients."""
    async with _web(settings) as (parts, auth), AsyncExitStack() as drains:
        yield _registry(
            await _submit(parts),
            await _upload(parts),
            await _status(parts),
            await _controls(parts),
            await _payments(parts),
            await _stripe_webhook(parts),
            await _account(parts),
            await _admin(parts),
            await _webhook(parts, drains, None),
            auth,
        )


@asynccontextmanager
async def copy_job(settings: Settings) -> AsyncIterator[Keeper]:
    """The spawned copy of one video (Modal's keep_video)."""
    settings.require_database()
    async with AsyncExitStack() as stack:
        yield await _Parts(settings, stack).keeper()


@asynccontextmanager
async def sweep_job(settings: Settings) -> AsyncIterator[SweepServices]:
    """One reconciliation pass: the lifecycle (provider lookups), the keeper (copy retries),
    the remover (retention), the purchase flow (purchases pending with Stripe)."""
    from shared.core.ratelimit import RateLimiter
    from shared.flows.reconcile import Reconciler, SweepConfig
    from shared.flows.removal import RetentionConfig

    settings.require_api()
    s = settings
    async with AsyncExitStack() as stack:
        parts = _Parts(settings, stack)
        lifecycle = await parts.lifecycle()
        keeper = await parts.keeper()
        remover = await parts.remover()
        purchases = await parts.purchases()
        reconciler = Reconciler(
            lifecycle,
            # A small burst: Replicate may count per second, not only per minute.
            RateLimiter(s.provider_rate_per_s, burst=min(5, max(1, int(s.provider_rate_per_s)))),
            keeper=keeper,
            purchases=purchases,
            config=SweepConfig(
                stale_after_s=s.sweep_stale_after_s,
                queued_grace_s=s.sweep_queued_grace_s,
                batch_size=s.sweep_batch_size,
                max_batches=s.sweep_max_batches,
                concurrency=s.sweep_concurrency,
                max_run_s=s.max_run_s,
            ),
            remover=remover,
            retention=RetentionConfig(
                retention_days=s.retention_days,
                batch_size=s.retention_batch_size,
                max_batches=s.retention_max_batches,
            ),
        )
        yield SweepServices(lifecycle, keeper, reconciler, remover, purchases)


# --- adapters chosen by settings -------------------------------------------------------------


async def open_transport(settings: Settings) -> Transport:
    """The RPC transport the settings name."""
    from shared.db.transports import PostgresTransport, SupabaseTransport

    if settings.rpc_transport == "postgres":
        assert settings.database_url is not None
        return await PostgresTransport.open(
            settings.database_url.get_secret_value(),
            min_size=settings.database_pool_min,
            max_size=settings.database_pool_max,
            role=settings.database_role,
        )
    assert settings.supabase_url is not None
    assert settings.supabase_service_role_key is not None
    return await SupabaseTransport.open(
        settings.supabase_url, settings.supabase_service_role_key.get_secret_value()
    )


def open_storage(settings: Settings) -> Storage:
    """The storage the settings name; a missing setting fails with its name."""
    if settings.storage_backend == "local":
        from pathlib import Path

        from shared.storage.local import LocalStorage

        settings.require("storage_public_base_url", "storage_signing_key")
        assert settings.storage_public_base_url is not None
        assert settings.storage_signing_key is not None
        return LocalStorage(
            Path(settings.storage_local_dir),
            settings.storage_public_base_url,
            settings.storage_signing_key.get_secret_value(),
        )
    from shared.storage.supabase import SupabaseStorage

    settings.require("supabase_url", "supabase_service_role_key", "storage_bucket")
    assert settings.supabase_url is not None
    assert settings.supabase_service_role_key is not None
    return SupabaseStorage(
        settings.supabase_url,
        settings.supabase_service_role_key.get_secret_value(),
        settings.storage_bucket,
        timeout_s=settings.storage_timeout_s,
    )
