"""Stripe-Signature verification, with the `stripe` library's own verification as the oracle.

Our check differs from stripe.WebhookSignature in one documented way: a timestamp more than the
tolerance in the FUTURE is refused (the library accepts any future timestamp); the generated
cases keep timestamps at or before `now` so the two are compared where they mean to agree.
"""

from __future__ import annotations

import time

import pytest
import stripe
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core.errors import InvalidStripeSignature
from shared.payments.signature import sign, signature_header, verify

SECRET = "whsec_test_0123456789abcdef"
OTHER = "whsec_test_rotated_fedcba9876543210"
BODY = b'{"id": "evt_1", "type": "checkout.session.completed"}'
TOLERANCE = 300


def oracle(header: str, body: bytes, secret: str) -> bool:
    try:
        stripe.WebhookSignature.verify_header(  # type: ignore[no-untyped-call]
            body.decode(), header, secret, TOLERANCE
        )
    except stripe.SignatureVerificationError:
        return False
    return True


def ours(header: str, body: bytes, secret: str, now: float) -> bool:
    try:
        verify(secret, header, body, now=now, tolerance_s=TOLERANCE)
    except InvalidStripeSignature:
        return False
    return True


def test_valid_header_is_accepted() -> None:
    now = int(time.time())
    header = signature_header(SECRET, now, BODY)
    assert verify(SECRET, header, BODY, now=now) == now
    assert oracle(header, BODY, SECRET)


def test_multi_signature_header_is_valid_with_either_secret() -> None:
    now = int(time.time())
    header = signature_header(OTHER, now, BODY, SECRET)
    assert ours(header, BODY, SECRET, now)
    assert ours(header, BODY, OTHER, now)
    assert oracle(header, BODY, SECRET)


def test_old_timestamp_fails() -> None:
    then = int(time.time()) - TOLERANCE - 5
    header = signature_header(SECRET, then, BODY)
    assert not ours(header, BODY, SECRET, time.time())
    assert not oracle(header, BODY, SECRET)


def test_far_future_timestamp_fails() -> None:
    now = int(time.time())
    assert not ours(signature_header(SECRET, now + TOLERANCE + 5, BODY), BODY, SECRET, now)


def test_tampered_body_fails() -> None:
    now = int(time.time())
    header = signature_header(SECRET, now, BODY)
    assert not ours(header, BODY + b" ", SECRET, now)
    assert not oracle(header, BODY + b" ", SECRET)


@pytest.mark.parametrize(
    "header",
    ["", "t=", "v1=abc", "t=abc,v1=abc", "t=1,v0=abc", ",,,", "t=99999999999999999,v1=a", "=="],
)
def test_malformed_header_is_the_one_error(header: str) -> None:
    with pytest.raises(InvalidStripeSignature):
        verify(SECRET, header, BODY, now=time.time())


def test_missing_header_and_secret_are_the_one_error() -> None:
    with pytest.raises(InvalidStripeSignature):
        verify(SECRET, None, BODY, now=time.time())
    with pytest.raises(InvalidStripeSignature):
        verify("", signature_header(SECRET, int(time.time()), BODY), BODY, now=time.time())


# --- property: we agree with the library on generated headers ---------------------------------

bodies = st.text(max_size=200).map(str.encode)
# Clear of the tolerance edge: the two checks read the clock a moment apart.
ages = st.integers(0, TOLERANCE - 10) | st.integers(TOLERANCE + 10, 2 * TOLERANCE)


@st.composite
def headers(draw: st.DrawFn) -> tuple[str, bytes]:
    """A header for a body: valid, tampered, expired, multi-signature or garbage."""
    body = draw(bodies)
    now = int(time.time())
    timestamp = now - draw(ages)
    kind = draw(st.sampled_from(["valid", "tampered_sig", "tampered_body", "multi", "garbage"]))
    if kind == "garbage":
        return draw(st.text(max_size=120)), body
    secrets = [SECRET] if kind != "multi" else draw(st.permutations([SECRET, OTHER]))
    parts = [f"t={timestamp}"] + [f"v1={sign(s, timestamp, body)}" for s in secrets]
    if kind == "multi" and draw(st.booleans()):
        parts.append("v0=" + "0" * 64)  # other schemes are ignored by both
    if kind == "tampered_sig":
        sig = parts[1]
        flipped = "0" if sig[-1] != "0" else "1"
        parts[1] = sig[:-1] + flipped
    if kind == "tampered_body":
        body += b"!"
    order = draw(st.permutations(parts))
    return ",".join(order), body


@settings(max_examples=300, deadline=None)
@given(headers())
def test_our_check_agrees_with_the_stripe_library(case: tuple[str, bytes]) -> None:
    header, body = case
    now = time.time()
    assert ours(header, body, SECRET, now) == oracle(header, body, SECRET)
