"""Text the database and the provider can take.

PostgreSQL refuses NUL in `text` and `\\u0000` in `jsonb`; a lone surrogate cannot be encoded as
UTF-8 at all (psycopg) and PostgREST's JSON parser refuses its escape. Control characters other
than tab and newlines are never meant in a prompt (terminal escapes, bidi tricks in logs).
Users' text is refused (a 422 naming the field); the provider's text is cleaned, because a
report must be applied whatever its message holds: a refund is never blocked by its bytes.
"""

from __future__ import annotations

import re

# C0 controls except tab, LF and CR; DEL; every surrogate code point (only lone ones survive
# decoding, and those cannot be encoded).
_UNSTORABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def unstorable(value: str) -> str | None:
    """Why `value` cannot be stored as a user's text, or None when it can."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    char = found.group()
    kind = "a lone surrogate" if "\ud800" <= char <= "\udfff" else "a control character"
    return f"contains {kind} (U+{ord(char):04X}) at position {found.start()}"


def storable(value: str, *, limit: int | None = None) -> str:
    """`value` without what cannot be stored (for text from the provider), cut to `limit`."""
    cleaned = _UNSTORABLE.sub("", value)
    return cleaned if limit is None else cleaned[:limit]
