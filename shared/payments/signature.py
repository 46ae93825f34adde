"""Stripe webhook signatures (`Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`).

The MAC is HMAC-SHA256 of `b"<t>." + raw body`, keyed with the endpoint secret exactly as given
(`whsec_...` included: unlike Standard Webhooks there is no base64 decoding). Several `v1`
entries may be present (secret rotation); other schemes (`v0`) are ignored.

Pure and total, in the manner of standard-webhooks: no clock (`now` is a parameter), no I/O,
and whatever the header, body or secret hold, `verify` either returns or raises
`InvalidStripeSignature`, so the endpoint answers 400 and never 500.
"""

from __future__ import annotations

import hashlib
import hmac

from shared.core.errors import InvalidStripeSignature

HEADER = "stripe-signature"
SCHEME = "v1"
DEFAULT_TOLERANCE_S = 5 * 60
# Unix seconds fit in 12 digits for the next 30 000 years; longer is garbage, not a timestamp.
_MAX_TIMESTAMP_DIGITS = 12
# A real header holds a timestamp and a few signatures; anything far longer is not one.
_MAX_HEADER_CHARS = 4096


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The hex `v1` signature of `body` sent at `timestamp`."""
    return hmac.new(secret.encode("utf-8"), _signed(timestamp, body), hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes, *extra_secrets: str) -> str:
    """A `Stripe-Signature` value: one `v1` per secret (the first, then any rotated ones)."""
    parts = [f"t={timestamp}"]
    parts += [f"{SCHEME}={sign(s, timestamp, body)}" for s in (secret, *extra_secrets)]
    return ",".join(parts)


def verify(
    secret: str,
    header: str | None,
    body: bytes,
    *,
    now: float,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> int:
    """Return the signed timestamp if one `v1` signature of `header` matches `body` under
    `secret` and the timestamp is within `tolerance_s` of `now`; else raise
    InvalidStripeSignature with a short reason."""
    if not secret:
        raise InvalidStripeSignature("The webhook secret is not configured.")
    if not header:
        raise InvalidStripeSignature("Missing Stripe-Signature header.")
    if len(header) > _MAX_HEADER_CHARS:
        raise InvalidStripeSignature("Stripe-Signature header is too long.")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.partition("=")
        if not sep:
            continue
        if key == "t" and timestamp is None:
            if not (value.isascii() and value.isdigit()) or len(value) > _MAX_TIMESTAMP_DIGITS:
                raise InvalidStripeSignature("Stripe-Signature has a malformed timestamp.")
            timestamp = int(value)
        elif key == SCHEME:
            signatures.append(value)
    if timestamp is None:
        raise InvalidStripeSignature("Stripe-Signature has no timestamp.")
    if not signatures:
        raise InvalidStripeSignature("Stripe-Signature has no v1 signature.")
    expected = sign(secret, timestamp, body)
    # Every candidate is compared (no early exit), each in constant time.
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected.encode("ascii"), candidate.encode("utf-8"))
    if not matched:
        raise InvalidStripeSignature("No Stripe-Signature v1 signature matches the body.")
    if abs(now - timestamp) > tolerance_s:
        raise InvalidStripeSignature("Stripe-Signature timestamp is outside the tolerance.")
    return timestamp


def _signed(timestamp: int, body: bytes) -> bytes:
    return f"{timestamp}.".encode("ascii") + body
