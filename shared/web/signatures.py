"""Standard Webhooks signatures: how Replicate signs the webhooks it sends.

A delivery carries three headers: `webhook-id` (message id), `webhook-timestamp` (Unix seconds)
and `webhook-signature` (a space-separated list of `v1,<base64 HMAC-SHA256>` entries, several
during key rotation). The MAC covers `"{id}.{timestamp}.".encode() + body` with the key
`base64decode(secret without its "whsec_" prefix)`.

Pure: no clock, no I/O. `verify` is total: whatever the headers, body or secret hold, it either
returns or raises `InvalidSignature`, so a webhook endpoint can answer 401 and never 500.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

from shared.core.errors import InvalidSignature

SECRET_PREFIX = "whsec_"  # noqa: S105 (a format prefix, not a secret)
DEFAULT_TOLERANCE_S = 5 * 60
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"

# Unix seconds fit in 12 digits for the next 30 000 years; longer is garbage, not a timestamp.
_MAX_TIMESTAMP_DIGITS = 12


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64>` signature of one delivery. Raises InvalidSignature for a bad secret."""
    mac = hmac.new(_key(secret), _signed_content(msg_id, timestamp, body), hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode("ascii")


def signed_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one delivery of `body`."""
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, msg_id, timestamp, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> None:
    """Return if `body` was signed with `secret` within `tolerance_s` of `now`.

    Header names are matched case-insensitively. Any `v1,` entry of the signature header may
    match (key rotation); other versions are ignored. Every failure, including a malformed
    secret, raises InvalidSignature with a short reason and nothing else ever escapes.
    """
    msg_id = _header(headers, ID_HEADER)
    raw_timestamp = _header(headers, TIMESTAMP_HEADER)
    signatures = _header(headers, SIGNATURE_HEADER)

    if not (raw_timestamp.isascii() and raw_timestamp.isdigit()):
        raise InvalidSignature("webhook timestamp is not an integer")
    if len(raw_timestamp) > _MAX_TIMESTAMP_DIGITS:
        raise InvalidSignature("webhook timestamp is out of range")
    timestamp = int(raw_timestamp)
    # Written so that a NaN `now` fails too: every comparison with NaN is False.
    if not now - tolerance_s <= timestamp:
        raise InvalidSignature("webhook timestamp is too old")
    if not timestamp <= now + tolerance_s:
        raise InvalidSignature("webhook timestamp is too new")

    expected = hmac.new(_key(secret), _signed_content(msg_id, timestamp, body), hashlib.sha256)
    expected_mac = expected.digest()
    for entry in signatures.split():
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue  # one garbled entry must not hide a valid one next to it
        if hmac.compare_digest(expected_mac, candidate):
            return
    raise InvalidSignature("no matching webhook signature")


def _header(headers: Mapping[str, str], name: str) -> str:
    value: object = headers.get(name)
    if value is None:
        # Plain dicts are case-sensitive; starlette/httpx Headers already matched above.
        for key, candidate in headers.items():
            if isinstance(key, str) and key.lower() == name:
                value = candidate
                break
    if not isinstance(value, str) or not value.strip():
        raise InvalidSignature(f"missing {name} header")
    return value


def _key(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    # Tolerate unpadded base64, as the Standard Webhooks reference libraries do.
    encoded += "=" * (-len(encoded) % 4)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidSignature("webhook secret is not valid base64") from exc
    if not key:
        raise InvalidSignature("webhook secret is empty")
    return key


def _signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    try:
        prefix = f"{msg_id}.{timestamp}.".encode()
    except UnicodeEncodeError as exc:  # lone surrogates cannot come off the wire as UTF-8
        raise InvalidSignature("webhook id is not valid text") from exc
    return prefix + body
