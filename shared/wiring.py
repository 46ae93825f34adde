"""The process's long-lived clients, built once at startup from settings (never at import)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from shared.core.catalog import Catalog, load_catalog
from shared.core.config import Settings
from shared.core.ratelimit import RateLimiter
from shared.db.batching import UpdateBatcher
from shared.db.rpc import PostgresTransport, Rpc, SupabaseTransport, Transport
from shared.flows.keeper import BackgroundScheduler, Keeper, KeepScheduler
from shared.flows.lifecycle import Lifecycle
from shared.flows.purchases import PurchaseConfig, Purchases
from shared.flows.reconcile import Reconciler, SweepConfig
from shared.flows.removal import AuthAdmin, Remover, RetentionConfig
from shared.payments.gateway import StripeGateway
from shared.payments.packs import load_packs
from shared.payments.store import PurchaseStore
from shared.provider.replicate import Provider, ReplicateProvider
from shared.storage.supabase import Storage, open_storage
from shared.web.auth import Authenticator
from shared.web.auth_admin import open_auth_admin


@dataclass
class Services:
    settings: Settings
    rpc: Rpc
    provider: Provider
    authenticator: Authenticator
    catalog: Catalog
    lifecycle: Lifecycle
    webhook_secret: str
    storage: Storage
    keeper: Keeper
    http: httpx.AsyncClient
    remover: Remover
    auth_admin: AuthAdmin
    schedule_keep: KeepScheduler | None = None
    # payments (issue #13): checkout, Stripe events, purchase reconciliation
    purchases: Purchases | None = None
    stripe_webhook_secret: str = ""

    def __post_init__(self) -> None:
        if self.schedule_keep is None:
            self._background = BackgroundScheduler(self.keeper.keep)
            self.schedule_keep = self._background

    @classmethod
    async def open(cls, settings: Settings) -> Services:
        """Check every setting the API needs (one message naming all that are missing), then
        connect."""
        settings.require_api()
        assert settings.replicate_webhook_secret is not None
        assert settings.public_webhook_url is not None
        catalog = load_catalog(settings.catalog_overrides)
        authenticator = Authenticator.from_settings(settings)
        provider = ReplicateProvider.from_settings(settings)
        storage = open_storage(settings)
        http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.output_copy_timeout_s, connect=10.0),
            follow_redirects=True,
        )
        rpc = Rpc(await open_transport(settings))
        purchases = open_purchases(settings, rpc)
        lifecycle = Lifecycle(
            rpc=rpc,
            provider=provider,
            catalog=catalog,
            webhook_base_url=settings.public_webhook_url,
            max_active=settings.max_active_generations,
            poll_after_s=settings.status_poll_after_s,
            max_polls=settings.status_max_polls,
            image_ref_for=lambda path: storage.signed_url(path, settings.input_url_ttl_s),
            batcher=UpdateBatcher(
                rpc,
                max_batch=settings.update_batch_max,
                max_calls=settings.update_batch_calls,
            ),
            rate_per_minute=settings.create_rate_per_minute,
            daily_budget_usd=settings.provider_daily_budget_usd,
        )
        auth_admin = open_auth_admin(settings)
        return cls(
            settings=settings,
            rpc=rpc,
            provider=provider,
            authenticator=authenticator,
            catalog=catalog,
            lifecycle=lifecycle,
            webhook_secret=settings.replicate_webhook_secret.get_secret_value(),
            storage=storage,
            keeper=Keeper(
                rpc=rpc,
                storage=storage,
                client=http,
                max_bytes=settings.max_output_bytes,
                timeout_s=settings.output_copy_timeout_s,
                signed_url_ttl_s=settings.signed_url_ttl_s,
            ),
            http=http,
            remover=Remover(rpc=rpc, storage=storage, provider=provider, auth_admin=auth_admin),
            auth_admin=auth_admin,
            purchases=purchases,
            stripe_webhook_secret=settings.stripe_webhook_secret.get_secret_value()
            if settings.stripe_webhook_secret
            else "",
        )

    def reconciler(self) -> Reconciler:
        s = self.settings
        return Reconciler(
            self.lifecycle,
            # A small burst: Replicate may count per second, not only per minute.
            RateLimiter(s.provider_rate_per_s, burst=min(5, max(1, int(s.provider_rate_per_s)))),
            keeper=self.keeper,
            purchases=self.purchases,
            config=SweepConfig(
                stale_after_s=s.sweep_stale_after_s,
                queued_grace_s=s.sweep_queued_grace_s,
                batch_size=s.sweep_batch_size,
                max_batches=s.sweep_max_batches,
                concurrency=s.sweep_concurrency,
                max_run_s=s.max_run_s,
            ),
            remover=self.remover,
            retention=RetentionConfig(
                retention_days=s.retention_days,
                batch_size=s.retention_batch_size,
                max_batches=s.retention_max_batches,
            ),
        )

    async def aclose(self) -> None:
        background = getattr(self, "_background", None)
        if isinstance(background, BackgroundScheduler):
            await background.drain()
        if self.lifecycle.batcher is not None:
            await self.lifecycle.batcher.drain()
        await self.http.aclose()
        await self.auth_admin.aclose()
        if self.purchases is not None:
            await self.purchases.gateway.aclose()
        await self.storage.aclose()
        await self.provider.aclose()
        await self.rpc.aclose()


def open_purchases(settings: Settings, rpc: Rpc) -> Purchases:
    """The purchase flow: packs, the Stripe gateway, the payment functions (same transport)."""
    assert settings.checkout_success_url is not None
    assert settings.checkout_cancel_url is not None
    rate = settings.stripe_rate_per_s
    return Purchases(
        PurchaseStore(rpc.transport),
        StripeGateway.from_settings(settings),
        load_packs(settings.credit_packs),
        RateLimiter(rate, burst=min(5, max(1, int(rate)))),
        config=PurchaseConfig(
            success_url=settings.checkout_success_url,
            cancel_url=settings.checkout_cancel_url,
            reconcile_after_s=settings.purchase_reconcile_after_s,
            checkout_expires_s=settings.checkout_expires_s,
            reconcile_batch=settings.purchase_reconcile_batch,
            rate_per_minute=settings.create_rate_per_minute,
        ),
    )


async def open_transport(settings: Settings) -> Transport:
    """The RPC transport the settings name."""
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
