"""Production's configuration when Supabase misbehaves: the API answers 503
database_unavailable (our error shape), never a 500, and charges nothing."""

from __future__ import annotations

import httpx
import pytest

from tests.functions.conftest import Stack
from tests.support import balance


@pytest.mark.parametrize("stack_mode", ["supabase"])
@pytest.mark.parametrize(
    "knobs",
    [
        {"gateway_error_rate": 1.0, "gateway_status": 502},
        {"gateway_error_rate": 1.0, "gateway_status": 504},
        {"error_rate": 1.0, "error_status": 503},
        {"drop_rate": 1.0},
    ],
    ids=["html-502", "html-504", "pgrst-503", "dropped"],
)
async def test_postgrest_trouble_is_503_database_unavailable(
    stack: Stack, supabase_url: str, knobs: dict[str, object]
) -> None:
    user, headers = await stack.user(credits=100)
    async with httpx.AsyncClient(base_url=supabase_url) as supabase:
        response = await supabase.post(
            "/__emulator/faults", json={**knobs, "path_prefix": "/rest/"}
        )
        assert response.status_code == 200
        created = await stack.submit(headers)
        status = await stack.api.get("/api/credits", headers=headers)
        await supabase.post("/__emulator/reset")
    for answer in (created, status):
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "database_unavailable"
        assert isinstance(answer.json()["detail"], str)
    assert await balance(stack.admin, user) == 100
    assert (await stack.api.get("/api/credits", headers=headers)).json()["balance"] == 100
