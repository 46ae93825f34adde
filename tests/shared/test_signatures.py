from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import Headers

from shared.core.errors import InvalidSignature
from shared.web.signatures import sign, signed_headers, verify

# The Standard Webhooks vector used by replicate-python's own tests
# (replicate/replicate-python, tests/test_webhooks.py): a known secret, message and signature.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

SECRET = "whsec_" + base64.b64encode(b"our-test-signing-key-32-bytes!!!").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"a-different-key-entirely-32bytes").decode()
NOW = 1_700_000_000


def payload(
    *,
    secret: str = SECRET,
    msg_id: str = "msg_test",
    timestamp: int = NOW,
    body: bytes = b'{"id": "p1", "status": "succeeded"}',
) -> tuple[dict[str, str], bytes]:
    """A correctly signed delivery: (headers, body)."""
    return signed_headers(secret, msg_id, timestamp, body), body


def test_replicate_test_vector_signs_as_published() -> None:
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


def test_replicate_test_vector_verifies_with_title_case_headers() -> None:
    headers = {
        "Content-Type": "application/json",
        "Webhook-ID": VECTOR_ID,
        "Webhook-Timestamp": str(VECTOR_TIMESTAMP),
        "Webhook-Signature": VECTOR_SIGNATURE,
    }
    verify(VECTOR_SECRET, headers, VECTOR_BODY, now=VECTOR_TIMESTAMP + 10)


def test_valid_payload_verifies() -> None:
    headers, body = payload()
    verify(SECRET, headers, body, now=NOW)


def test_starlette_headers_are_accepted() -> None:
    headers, body = payload()
    raw = [(k.upper().encode(), v.encode()) for k, v in headers.items()]
    verify(SECRET, Headers(raw=raw), body, now=NOW)


def test_multi_sig_payload_is_valid() -> None:
    headers, body = payload()
    old = sign(OTHER_SECRET, "msg_test", NOW, body)
    headers["webhook-signature"] = f"v2,abc {old} v1,not*base64 {headers['webhook-signature']}"
    verify(SECRET, headers, body, now=NOW)


def test_secret_without_prefix_is_accepted() -> None:
    headers, body = payload()
    verify(SECRET.removeprefix("whsec_"), headers, body, now=NOW)


def test_tampered_body_fails() -> None:
    headers, body = payload()
    with pytest.raises(InvalidSignature):
        verify(SECRET, headers, body + b" ", now=NOW)


def test_wrong_secret_fails() -> None:
    headers, body = payload()
    with pytest.raises(InvalidSignature, match="no matching"):
        verify(OTHER_SECRET, headers, body, now=NOW)


def test_tampered_id_fails() -> None:
    headers, body = payload()
    headers["webhook-id"] = "msg_other"
    with pytest.raises(InvalidSignature):
        verify(SECRET, headers, body, now=NOW)


def test_old_timestamp_fails() -> None:
    headers, body = payload(timestamp=NOW - 301)
    with pytest.raises(InvalidSignature, match="too old"):
        verify(SECRET, headers, body, now=NOW)


def test_new_timestamp_fails() -> None:
    headers, body = payload(timestamp=NOW + 301)
    with pytest.raises(InvalidSignature, match="too new"):
        verify(SECRET, headers, body, now=NOW)


def test_timestamp_at_the_tolerance_edge_is_valid() -> None:
    headers, body = payload(timestamp=NOW - 300)
    verify(SECRET, headers, body, now=NOW)
    verify(SECRET, headers, body, now=NOW - 600)


def test_custom_tolerance_is_honoured() -> None:
    headers, body = payload(timestamp=NOW - 10)
    with pytest.raises(InvalidSignature, match="too old"):
        verify(SECRET, headers, body, now=NOW, tolerance_s=5)


def test_nan_clock_fails() -> None:
    headers, body = payload()
    with pytest.raises(InvalidSignature):
        verify(SECRET, headers, body, now=float("nan"))


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_fails(missing: str) -> None:
    headers, body = payload()
    del headers[missing]
    with pytest.raises(InvalidSignature, match="missing"):
        verify(SECRET, headers, body, now=NOW)


@pytest.mark.parametrize("value", ["", "abc", "1.5e9", "-1700000000", "1_700_000_000", "١٢٣"])
def test_non_integer_timestamp_fails(value: str) -> None:
    headers, body = payload()
    headers["webhook-timestamp"] = value
    with pytest.raises(InvalidSignature):
        verify(SECRET, headers, body, now=NOW)


@pytest.mark.parametrize(
    "signature", ["", "v1", "v1,", "v1,!!!!", "v2,abc", "g0hM9SsE+OTPJTGt", "v1,,,", " , "]
)
def test_garbage_signature_fails(signature: str) -> None:
    headers, body = payload()
    headers["webhook-signature"] = signature
    with pytest.raises(InvalidSignature):
        verify(SECRET, headers, body, now=NOW)


@pytest.mark.parametrize("secret", ["whsec_", "whsec_!!!not base64", "not base64 at all", "é"])
def test_malformed_secret_fails(secret: str) -> None:
    headers, body = payload()
    with pytest.raises(InvalidSignature, match="secret"):
        verify(secret, headers, body, now=NOW)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"webhook-id": "", "webhook-timestamp": "", "webhook-signature": ""},
        {"webhook-id": "\ud800", "webhook-timestamp": str(NOW), "webhook-signature": "v1,AAAA"},
        {"webhook-id": "m", "webhook-timestamp": "9" * 400, "webhook-signature": "v1,AAAA"},
        {"webhook-id": "m", "webhook-timestamp": str(NOW), "webhook-signature": "\x00\n\t"},
    ],
)
def test_garbage_headers_fail(headers: dict[str, str]) -> None:
    with pytest.raises(InvalidSignature):
        verify(SECRET, headers, b"{}", now=NOW)


header_names = st.sampled_from(
    ["webhook-id", "Webhook-Id", "webhook-timestamp", "WEBHOOK-TIMESTAMP", "webhook-signature"]
)


@given(
    headers=st.dictionaries(header_names | st.text(max_size=20), st.text(max_size=80)),
    body=st.binary(max_size=64),
    secret=st.one_of(st.just(SECRET), st.text(max_size=60)),
    now=st.floats(allow_nan=True, allow_infinity=True),
)
def test_random_headers_only_ever_raise_invalid_signature(
    headers: dict[str, str], body: bytes, secret: str, now: float
) -> None:
    with contextlib.suppress(InvalidSignature):
        verify(secret, headers, body, now=now)


@given(
    timestamp=st.integers(min_value=0, max_value=10**11),
    body=st.binary(max_size=256),
    msg_id=st.text(min_size=1, max_size=40).filter(str.strip),
)
def test_signed_headers_always_verify(timestamp: int, body: bytes, msg_id: str) -> None:
    headers, _ = payload(msg_id=msg_id, timestamp=timestamp, body=body)
    verify(SECRET, headers, body, now=timestamp)
