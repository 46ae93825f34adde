"""The domain error hierarchy.

Every error the service shows a caller is one of these. Each class carries a stable `code`
(machine-readable, never changes once published) and an HTTP `status`; `shared.web.app` maps the
whole family to responses in one handler. Foreign errors (psycopg, PostgREST, httpx, Replicate)
are translated once, at the boundary that meets them, and chained with `raise ... from exc`.

    AppError                         500 internal_error
    ├── ConfigurationError           500 configuration_error   (raised at start, not per request)
    ├── AuthenticationError          401 unauthorized
    │   └── InvalidSignature         401 invalid_signature     (webhook verification)
    ├── InsufficientCredits          402 insufficient_credits
    ├── PermissionDenied             403 forbidden
    │   └── AccountOnHold            403 account_on_hold       (payments: dispute, credits owed)
    ├── NotFound                     404 not_found
    ├── Conflict                     409 conflict
    │   ├── IdempotencyConflict      409 idempotency_conflict
    │   └── InvalidTransition        409 invalid_transition
    ├── PayloadTooLarge              413 payload_too_large
    ├── UnsupportedMediaType         415 unsupported_media_type
    ├── InvalidInput                 422 invalid_input
    ├── InvalidStripeSignature       400 invalid_signature     (Stripe webhook verification)
    ├── TooManyActive                429 too_many_active
    ├── RateLimited                  429 rate_limited
    ├── ProviderError                502 provider_error
    ├── ProviderUnavailable          503 provider_unavailable
    ├── DatabaseUnavailable          503 database_unavailable
    ├── AuthUnavailable              503 auth_unavailable      (signing keys unreachable)
    ├── PaymentProviderError         502 payment_provider_error
    ├── PaymentProviderUnavailable   503 payment_provider_unavailable
    └── BudgetExhausted              503 budget_exhausted      (provider daily budget reached)
"""

from __future__ import annotations

from typing import ClassVar

from typing_extensions import TypeAliasType

JsonValue = TypeAliasType(
    "JsonValue", "str | int | float | bool | list[JsonValue] | dict[str, JsonValue] | None"
)


class AppError(Exception):
    """Base of every domain error: a readable `detail`, a stable `code`, an HTTP `status`.

    `extra` holds fields that help the caller act (balance, required, refunded, ...); they are
    merged into the JSON error body next to `detail` and `code`.
    """

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    default_detail: ClassVar[str] = "Internal error."

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extra: JsonValue,
    ) -> None:
        self.detail = detail or self.default_detail
        self.extra: dict[str, JsonValue] = extra
        self.headers: dict[str, str] = headers or {}
        super().__init__(self.detail)

    def body(self) -> dict[str, JsonValue]:
        """The JSON error body; `detail` and `code` always win over extra fields."""
        return {**self.extra, "detail": self.detail, "code": self.code}


class ConfigurationError(AppError):
    code = "configuration_error"
    default_detail = "The service is misconfigured."


class AuthenticationError(AppError):
    code = "unauthorized"
    status = 401
    default_detail = "Not authenticated."


class InvalidSignature(AuthenticationError):
    code = "invalid_signature"
    default_detail = "Webhook signature verification failed."


class InsufficientCredits(AppError):
    code = "insufficient_credits"
    status = 402
    default_detail = "Not enough credits."


class PermissionDenied(AppError):
    code = "forbidden"
    status = 403
    default_detail = "Not allowed."


class NotFound(AppError):
    code = "not_found"
    status = 404
    default_detail = "Not found."


class Conflict(AppError):
    code = "conflict"
    status = 409
    default_detail = "The request conflicts with the current state."


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"
    default_detail = "This Idempotency-Key was already used with different parameters."


class InvalidTransition(Conflict):
    code = "invalid_transition"
    default_detail = "The generation cannot make that change in its current state."


class PayloadTooLarge(AppError):
    code = "payload_too_large"
    status = 413
    default_detail = "The request body is too large."


class UnsupportedMediaType(AppError):
    code = "unsupported_media_type"
    status = 415
    default_detail = "Unsupported media type."


class InvalidInput(AppError):
    code = "invalid_input"
    status = 422
    default_detail = "The request is invalid."


class TooManyActive(AppError):
    code = "too_many_active"
    status = 429
    default_detail = "Too many generations are running; wait for one to finish."


class RateLimited(AppError):
    code = "rate_limited"
    status = 429
    default_detail = "Too many requests; slow down."


class ProviderError(AppError):
    code = "provider_error"
    status = 502
    default_detail = "The video provider refused the request."


class ProviderUnavailable(AppError):
    code = "provider_unavailable"
    status = 503
    default_detail = "The video provider is unavailable; try again shortly."


class DatabaseUnavailable(AppError):
    code = "database_unavailable"
    status = 503
    default_detail = "The database is unavailable; try again shortly."


class AuthUnavailable(AppError):
    """The signing keys could not be fetched or used: our trouble, not the caller's."""

    code = "auth_unavailable"
    status = 503
    default_detail = "Could not verify the token right now; try again shortly."


# --- guardrails (issue 14) --------------------------------------------------------------------


class BudgetExhausted(AppError):
    """The operator's daily provider budget is used up: no new generations until spend ages out."""

    code = "budget_exhausted"
    status = 503
    default_detail = (
        "New generations are paused for now: the service reached its daily limit. "
        "Nothing was charged; try again later."
    )


# --- payments ---------------------------------------------------------------------------------


class AccountOnHold(PermissionDenied):
    """A dispute or credits a refund could not take back: no new generations or purchases."""

    code = "account_on_hold"
    default_detail = (
        "Your account is on hold because of a payment problem, so it cannot start generations "
        "or buy credits; your videos and history stay readable. Contact support to resolve it."
    )


class InvalidStripeSignature(AppError):
    """Stripe's webhook contract: a delivery that fails verification gets a 400."""

    code = "invalid_signature"
    status = 400
    default_detail = "Stripe signature verification failed."


class PaymentProviderError(AppError):
    code = "payment_provider_error"
    status = 502
    default_detail = "The payment provider refused the request; nothing was charged."


class PaymentProviderUnavailable(AppError):
    code = "payment_provider_unavailable"
    status = 503
    default_detail = "The payment provider is unavailable; nothing was charged, try again shortly."
