"""Stripe: credit packs, Checkout Sessions, the webhook signature and event parsing."""
