"""Stripe: credit packs, Checkout Sessions (the `PaymentGateway` port and its `stripe` adapter),
the webhook signature and event parsing. The payment SQL calls are in shared.db.purchases, the
domain types (pack, purchase, event facts) in shared.core.purchases.

May import: shared.core. The `stripe` client is imported lazily, when the adapter is built.
"""
