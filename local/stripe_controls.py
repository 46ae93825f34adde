"""The Stripe emulator's own controls (not Stripe's API): faults, disputes, what was sent.

GET/POST /__emulator/faults                      the knobs (StripeFaults)
POST /__emulator/sessions/{id}/dispute           {"outcome": "won" | "lost" | null}
POST /__emulator/sessions/{id}/dispute/close     {"outcome": "won" | "lost"}
GET  /__emulator/events, /__emulator/deliveries  every event emitted, every delivery made
POST /__emulator/flush                           send events held back by webhook_reorder
GET  /__emulator/settled?wait=S                  every queued event delivered or dropped
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import JsonValue

from local.emulator_faults import faults_router
from local.stripe_engine import Json, Session, StripeEngine


class StripeProblem(Exception):
    """An error answered in Stripe's shape: {"error": {"type", "message"}}."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind


def controls_router(engine: StripeEngine, found: Callable[[str], Session]) -> APIRouter:
    app = faults_router(engine)

    @app.post("/__emulator/sessions/{session_id}/dispute")
    async def open_dispute(session_id: str, body: dict[str, JsonValue]) -> Json:
        session = found(session_id)
        if session.charge is None:
            raise StripeProblem(400, "Only a paid session can be disputed.")
        outcome = body.get("outcome")
        if outcome not in (None, "won", "lost"):
            raise StripeProblem(400, "outcome must be won, lost or null")
        return engine.dispute(session, outcome if isinstance(outcome, str) else None)

    @app.post("/__emulator/sessions/{session_id}/dispute/close")
    async def close_dispute(session_id: str, body: dict[str, JsonValue]) -> Json:
        session = found(session_id)
        outcome = body.get("outcome")
        if session.dispute is None or outcome not in ("won", "lost"):
            raise StripeProblem(400, "Close an open dispute with outcome won or lost.")
        return engine.close_dispute(session, str(outcome))

    @app.get("/__emulator/events")
    async def events() -> list[Json]:
        return engine.state.events

    @app.get("/__emulator/deliveries")
    async def deliveries() -> list[Json]:
        return [dict(asdict(d)) for d in engine.state.deliveries]

    @app.post("/__emulator/flush")
    async def flush() -> Json:
        return {"sent": engine.flush()}

    @app.get("/__emulator/settled")
    async def settled(wait: Annotated[float, Query(ge=0, le=60)] = 10.0) -> Json:
        return {"settled": await engine.settled(wait)}

    return app
