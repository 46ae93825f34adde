"""What several endpoint groups' handlers share: reading a generation id from the path, and the
answer to a create (text-to-video, image-to-video, retry)."""

from __future__ import annotations

import uuid

from fastapi import Response, status

from shared.core.errors import NotFound
from shared.db.rpc import Created
from shared.web.schemas import CreatedOut


def parse_generation_id(raw: str) -> uuid.UUID:
    """A path id; anything malformed is simply not found (no hint about what exists)."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound("Generation not found.") from None


def created_answer(submitted: Created, response: Response) -> CreatedOut:
    """201 for a new generation, 200 for an Idempotency-Key replay."""
    if submitted.replayed:
        response.status_code = status.HTTP_200_OK
    return CreatedOut.created(
        submitted.generation, balance=submitted.balance, replayed=submitted.replayed
    )
