"""The Replicate adapter at the transport: every call is bounded, whatever the client retries."""

from __future__ import annotations

import httpx
import pytest
from replicate.client import Client

from shared.core.errors import ProviderError, ProviderUnavailable
from shared.provider.replicate import Prediction, ReplicateProvider


def provider(handler: httpx.MockTransport, timeout_s: float = 0.5) -> ReplicateProvider:
    client = Client(api_token="r8_test", base_url="https://api.replicate.test", transport=handler)
    return ReplicateProvider(client, timeout_s=timeout_s)


async def test_get_is_bounded_while_the_client_retries_a_busy_provider() -> None:
    calls = 0

    def busy(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(503, json={"detail": "busy"}, headers={"Retry-After": "1"})

    with pytest.raises(ProviderUnavailable):
        await provider(httpx.MockTransport(busy)).get("p1")
    assert calls >= 1


async def test_aborted_prediction_is_read_and_fails() -> None:
    def aborted(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "p1", "status": "aborted", "logs": None})

    prediction = await provider(httpx.MockTransport(aborted)).get("p1")
    assert prediction.our_status == "failed"
    assert prediction.error_message is not None


async def test_refusal_is_a_provider_error_with_its_status() -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"title": "Not found", "detail": "no such prediction"})

    with pytest.raises(ProviderError) as caught:
        await provider(httpx.MockTransport(refused)).cancel("p1")
    assert caught.value.extra["provider_status"] == 404


def test_progress_is_read_from_the_last_progress_bar() -> None:
    logs = " 10%|#  | 2/20 [00:01]\n 45%|####5 | 9/20 [00:04<00:05,  2.1it/s]\n"
    assert Prediction(id="p", status="processing", logs=logs).progress == 45
    assert Prediction(id="p", status="processing", logs="3/12 [00:01]").progress == 25


@pytest.mark.parametrize(
    "logs", ["9" * 5000 + "/" + "9" * 5000 + " [00:01]", "1" * 12 + "/20 [00:01]", "0/0 [00:01]"]
)
def test_absurd_step_counts_are_no_progress_and_no_error(logs: str) -> None:
    # Python refuses int() of over 4300 digits; the parser must never get that far.
    assert Prediction(id="p", status="processing", logs=logs).progress is None
