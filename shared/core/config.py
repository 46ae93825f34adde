"""Typed settings from the environment.

One object, built on demand (never at import time). Secrets have no defaults: a component that
needs one calls `require(...)`, which fails with the names of every missing variable at once.

Each setting is read from the environment variable of its name (upper case by convention; any
case matches), under the arguments a caller passes. A plain pydantic model does this in a few
lines: pydantic-settings did the same, but its import (a command-line parser, .env files, cloud
secret stores; none used here) cost every cold start ~11 ms of CPU.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from shared.core.errors import ConfigurationError

Environment = Literal["development", "test", "production"]
RpcTransport = Literal["postgres", "supabase"]

# Values that mean "somebody forgot to fill this in"; refused outside development.
_PLACEHOLDERS = frozenset({"changeme", "change-me", "secret", "your-secret", "xxx", "todo"})


class Settings(BaseModel):
    """Every setting the service reads; the environment variable is the upper-case field name."""

    # No setting is infinite: "inf" would disable a timeout, overflow a lease or rate, and
    # cannot travel as JSON to PostgREST (a daily budget of inf failed every create).
    model_config = ConfigDict(
        extra="ignore", frozen=True, allow_inf_nan=False, validate_default=True
    )

    environment: Environment = "production"
    log_level: str = "INFO"

    # --- database -------------------------------------------------------------------------
    rpc_transport: RpcTransport = "supabase"
    database_url: SecretStr | None = None
    database_pool_min: int = Field(default=1, ge=0)
    database_pool_max: int = Field(default=10, ge=1)
    database_role: str | None = "service_role"
    supabase_url: str | None = None
    supabase_service_role_key: SecretStr | None = None

    # --- auth -----------------------------------------------------------------------------
    supabase_jwt_secret: SecretStr | None = None
    supabase_jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str = "authenticated"
    jwt_leeway_s: int = Field(default=30, ge=0, le=300)

    # --- provider -------------------------------------------------------------------------
    replicate_api_token: SecretStr | None = None
    replicate_base_url: str = "https://api.replicate.com"
    replicate_webhook_secret: SecretStr | None = None
    replicate_timeout_s: float = Field(default=15.0, gt=0)
    public_webhook_url: str | None = None
    prediction_deadline_s: int = Field(default=30 * 60, ge=60)
    catalog_overrides: str | None = None

    # --- business limits ------------------------------------------------------------------
    max_active_generations: int = Field(default=3, ge=1)
    low_balance_threshold: int = Field(default=20, ge=0)

    # --- reconciliation and polling -------------------------------------------------------
    status_poll_after_s: int = Field(default=30, ge=1)
    status_max_polls: int = Field(default=40, ge=0)
    sweep_stale_after_s: int = Field(default=90, ge=0)
    sweep_queued_grace_s: int = Field(default=120, ge=0)
    sweep_batch_size: int = Field(default=200, ge=1, le=10_000)
    sweep_max_batches: int = Field(default=50, ge=1)
    sweep_concurrency: int = Field(default=16, ge=1, le=256)
    max_run_s: int = Field(default=30 * 60, ge=60)
    provider_rate_per_s: float = Field(default=40.0, gt=0)
    # Provider updates (webhooks, polls) arriving together share database calls (batching.py).
    update_batch_max: int = Field(default=64, ge=1, le=1000)
    update_batch_calls: int = Field(default=2, ge=1, le=64)
    # Status reads arriving together share database calls the same way.
    read_batch_max: int = Field(default=64, ge=1, le=1000)
    read_batch_calls: int = Field(default=1, ge=1, le=64)

    # --- HTTP -----------------------------------------------------------------------------
    cors_origins: list[str] = Field(default_factory=list)  # comma-separated in the environment
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # Replicate's webhook carries the prediction's whole log, which outgrows max_body_bytes.
    max_webhook_bytes: int = Field(default=1024 * 1024, ge=1024)
    # FastAPI's native OpenTelemetry (request spans, metrics, logs through the providers the
    # deployment configures). Off unless set: this service ships no OpenTelemetry SDK, and
    # looking for providers costs every request ~20 us (7% of a status read's CPU).
    fastapi_telemetry: bool = False

    # --- storage --------------------------------------------------------------------------
    storage_backend: Literal["local", "supabase"] = "supabase"
    storage_bucket: str = "generations"  # a PRIVATE bucket: every read goes through a signed URL
    storage_local_dir: str = ".local/storage"
    storage_public_base_url: str | None = None  # the dev server's URL, for local signed links
    storage_signing_key: SecretStr | None = None  # local backend only
    storage_timeout_s: float = Field(default=30.0, gt=0)
    signed_url_ttl_s: int = Field(default=3600, ge=60)
    input_url_ttl_s: int = Field(default=2 * 3600, ge=60)
    # Supabase's Free plan stores files up to 50 MB; raise it with the plan's (and bucket's) limit.
    max_output_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    output_copy_timeout_s: float = Field(default=600.0, gt=0)
    # A failed copy is tried again by the sweeper after this delay, up to copy_max_attempts
    # times in all, at most copy_concurrency copies at once per sweep.
    copy_retry_after_s: int = Field(default=60, ge=0, le=3600)
    copy_max_attempts: int = Field(default=5, ge=1, le=100)
    copy_concurrency: int = Field(default=4, ge=1, le=64)

    # --- guardrails (issue 14) --------------------------------------------------------------
    # Credits a user gets once, when the email or phone is confirmed (never when anonymous).
    # The signup trigger reads it from the database: `wanctl migrate` (and the local stack at
    # start) writes it there through public.configure_guardrails.
    signup_bonus_credits: int = Field(default=100, ge=0, le=1_000_000)
    # Creates (text-to-video, image-to-video, retry; checkout) per user per rolling minute.
    create_rate_per_minute: int = Field(default=10, ge=1, le=10_000)
    # The estimated provider spend of the last 24 h that stops new creates (unset: no guard).
    provider_daily_budget_usd: float | None = Field(default=None, gt=0)
    # Stored videos and input images older than this are deleted (0 keeps them forever).
    retention_days: int = Field(default=30, ge=0, le=36_500)
    retention_batch_size: int = Field(default=200, ge=1, le=10_000)
    retention_max_batches: int = Field(default=10, ge=1)
    # The original app's targets for the operator's numbers.
    target_success_rate: float = Field(default=0.95, ge=0, le=1)
    target_completion_s: float = Field(default=300.0, gt=0)
    target_webhook_rate: float = Field(default=0.99, ge=0, le=1)

    # --- payments (Stripe; issue #13) ---------------------------------------------------------
    # JSON list of packs: [{"id", "credits", "amount" (minor units), "currency", "price_id"?}].
    # None: the default packs (shared/payments/packs.py).
    credit_packs: str | None = None
    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_base_url: str | None = None  # None: Stripe itself; locally the emulator
    stripe_timeout_s: float = Field(default=15.0, gt=0)
    # Where Stripe sends the buyer back (the frontend's pages); {CHECKOUT_SESSION_ID} allowed.
    checkout_success_url: str | None = None
    checkout_cancel_url: str | None = None
    # An unpaid Checkout Session expires after this (Stripe allows 30 min to 24 h), so an
    # abandoned checkout ends `expired` soon instead of staying pending for a day.
    # Counted from the purchase; Stripe needs at least 30 minutes left when the session is
    # made, and the minute above that lets a replay after a lost answer still make it.
    checkout_expires_s: int = Field(default=3600, ge=1860, le=24 * 3600)
    # Reconciliation asks Stripe about purchases pending this long (and again this often).
    purchase_reconcile_after_s: int = Field(default=5 * 60, ge=0)
    purchase_reconcile_batch: int = Field(default=100, ge=1, le=1000)
    stripe_rate_per_s: float = Field(default=20.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _environment_under_arguments(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        environ = {name.lower(): value for name, value in os.environ.items()}
        found = {name: environ[name] for name in cls.model_fields if name in environ}
        return {**found, **data}

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    def require(self, *names: str) -> None:
        """Fail with one message naming every listed setting that is missing or a placeholder."""
        missing: list[str] = []
        placeholder: list[str] = []
        for name in names:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if value is None or value == "":
                missing.append(name.upper())
            elif (
                self.environment != "development"
                and isinstance(value, str)
                and value.strip().lower() in _PLACEHOLDERS
            ):
                placeholder.append(name.upper())
        problems = []
        if missing:
            problems.append("missing: " + ", ".join(missing))
        if placeholder:
            problems.append("placeholder values: " + ", ".join(placeholder))
        if problems:
            raise ConfigurationError("settings are incomplete (" + "; ".join(problems) + ")")

    def require_api(self) -> None:
        """Everything an endpoint or the sweeper needs, checked at once: one message names all
        that is missing, so a deploy is fixed in one go."""
        names = ["replicate_api_token", "replicate_webhook_secret", "public_webhook_url"]
        names += [  # payments
            "stripe_secret_key", "stripe_webhook_secret",
            "checkout_success_url", "checkout_cancel_url",
        ]  # fmt: skip
        if self.rpc_transport == "postgres":
            names.append("database_url")
        if self.supabase_jwks_url is None:
            names.append("supabase_jwt_secret")
        if self.rpc_transport == "supabase" or self.storage_backend == "supabase":
            names += ["supabase_url", "supabase_service_role_key"]
        if self.storage_backend == "local":
            names += ["storage_public_base_url", "storage_signing_key"]
        self.require(*dict.fromkeys(names))

    def require_database(self) -> None:
        if self.rpc_transport == "postgres":
            self.require("database_url")
        else:
            self.require("supabase_url", "supabase_service_role_key")

    def require_auth(self) -> None:
        if self.supabase_jwks_url is None:
            self.require("supabase_jwt_secret")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
