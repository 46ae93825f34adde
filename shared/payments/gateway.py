"""Stripe through the official `stripe` library: Checkout Sessions (create, retrieve).

`PaymentGateway` is the port the purchase flow takes; `StripeGateway` is the adapter: an async
`stripe.StripeClient` over `stripe.HTTPXClient`, its API base pointed at STRIPE_BASE_URL when
set (the local emulator). Stripe's errors are translated here, once:
connection trouble and rate limits -> PaymentProviderUnavailable (503); any other refusal ->
PaymentProviderError (502, with `provider_status`).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from shared.core.errors import PaymentProviderError, PaymentProviderUnavailable
from shared.core.purchases import CreditPack

if TYPE_CHECKING:
    import stripe

    from shared.core.config import Settings


T = TypeVar("T")


@dataclass(frozen=True)
class CheckoutSession:
    """What Stripe says of one Checkout Session."""

    id: str
    url: str | None
    status: str | None = None  # open | complete | expired
    payment_status: str | None = None  # paid | unpaid | no_payment_required
    payment_intent: str | None = None
    amount_total: int | None = None
    currency: str | None = None


@dataclass(frozen=True)
class CheckoutOrder:
    """One purchase to sell in a Checkout Session, and where Stripe sends the buyer after."""

    purchase_id: uuid.UUID
    user_id: uuid.UUID
    pack: CreditPack
    success_url: str
    cancel_url: str
    expires_at: int | None = None  # Unix time; None: Stripe's default (24 h)


class PaymentGateway(Protocol):
    async def create_checkout(self, order: CheckoutOrder) -> CheckoutSession: ...

    async def get_checkout(self, session_id: str) -> CheckoutSession: ...

    async def payment_status(self, payment_intent: str) -> str | None:
        """The PaymentIntent's status (succeeded, processing, requires_payment_method, ...)."""
        ...

    async def aclose(self) -> None: ...


def _session(obj: stripe.checkout.Session) -> CheckoutSession:
    # Attribute access only: a StripeObject is a dict up to stripe-python 14 and is not from 15
    # on (and 14 deprecates `to_dict`); attributes read the same in both.
    intent = getattr(obj, "payment_intent", None)
    if intent is not None and not isinstance(intent, str):  # expanded
        intent = getattr(intent, "id", None)
    return CheckoutSession(
        id=obj.id,
        url=getattr(obj, "url", None),
        status=getattr(obj, "status", None),
        payment_status=getattr(obj, "payment_status", None),
        payment_intent=intent if isinstance(intent, str) else None,
        amount_total=getattr(obj, "amount_total", None),
        currency=getattr(obj, "currency", None),
    )


class StripeGateway:
    def __init__(self, client: stripe.StripeClient, http: stripe.HTTPXClient) -> None:
        self._client = client
        self._http = http

    @classmethod
    def from_settings(cls, settings: Settings) -> StripeGateway:
        import stripe

        assert settings.stripe_secret_key is not None
        http = stripe.HTTPXClient(timeout=settings.stripe_timeout_s)
        base = settings.stripe_base_url
        client = stripe.StripeClient(
            settings.stripe_secret_key.get_secret_value(),
            base_addresses={"api": base.rstrip("/")} if base else {},
            http_client=http,
            # Stripe retries POSTs safely: the library sends an idempotency key (ours, below).
            max_network_retries=1,
        )
        return cls(client, http)

    async def create_checkout(self, order: CheckoutOrder) -> CheckoutSession:
        pack, purchase_id = order.pack, order.purchase_id
        metadata = {"purchase_id": str(purchase_id), "user_id": str(order.user_id), "pack": pack.id}
        if pack.price_id:
            line_item: dict[str, object] = {"price": pack.price_id, "quantity": 1}
        else:
            line_item = {
                "quantity": 1,
                "price_data": {
                    "currency": pack.currency,
                    "unit_amount": pack.amount,
                    "product_data": {"name": f"{pack.credits} credits ({pack.id} pack)"},
                },
            }
        params: dict[str, object] = {
            "mode": "payment",
            "line_items": [line_item],
            "client_reference_id": str(purchase_id),
            "metadata": metadata,
            # Copied onto the PaymentIntent (and its charge), so refunds and disputes name us.
            "payment_intent_data": {"metadata": metadata},
            "success_url": order.success_url,
            "cancel_url": order.cancel_url,
        }
        if order.expires_at is not None:
            params["expires_at"] = order.expires_at
        # One session per purchase: a retried checkout gets the same session back.
        options: stripe.RequestOptions = {"idempotency_key": f"checkout-{purchase_id}"}
        created = await self._call(
            self._client.v1.checkout.sessions.create_async(params, options)  # type: ignore[arg-type]
        )
        return _session(created)

    async def get_checkout(self, session_id: str) -> CheckoutSession:
        retrieved = self._client.v1.checkout.sessions.retrieve_async(session_id)
        return _session(await self._call(retrieved))

    async def payment_status(self, payment_intent: str) -> str | None:
        intent = await self._call(self._client.v1.payment_intents.retrieve_async(payment_intent))
        status = getattr(intent, "status", None)
        return status if isinstance(status, str) else None

    async def _call(self, pending: Awaitable[T]) -> T:
        import stripe

        try:
            return await pending
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            raise PaymentProviderUnavailable() from exc
        except stripe.StripeError as exc:
            status = exc.http_status
            if status is not None and status >= 500:
                raise PaymentProviderUnavailable() from exc
            raise PaymentProviderError(provider_status=status) from exc

    async def aclose(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]
