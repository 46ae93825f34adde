"""The Replicate emulator, driven by the real `replicate` client over real HTTP.

One emulator and one webhook receiver serve the whole module (uvicorn threads on loopback); each
test starts from a reset emulator. Nothing waits on the clock: tests wait until the emulator
says a prediction has settled (final status, every webhook handled) or on the receiver's
condition, always with a bound.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from pydantic import JsonValue
from replicate.client import Client
from replicate.exceptions import ReplicateError

from local.emulator import create_emulator_app
from local.emulator_faults import Dice, EmulatorConfig, Faults, parse_duration
from local.emulator_media import CHUNK_BYTES, mp4_chunks, padded_size, sample_mp4, top_level_boxes
from local.serve import serve
from shared.core.errors import InvalidSignature
from shared.web.signatures import verify

TOKEN = "r8_emulator_test_token"
SECRET = "whsec_" + base64.b64encode(b"emulator-test-signing-key-32byte").decode()
MODEL = "wan-video/wan-2.1-t2v-480p"
WAIT_S = 10.0
CONFIG = EmulatorConfig(
    api_token=TOKEN,
    webhook_secret=SECRET,
    seed=1234,
    faults=Faults(duration_s=0.2),
    webhook_retry_delays_s=(0.01, 0.02, 0.05),
)
Json = dict[str, Any]  # parsed JSON answers


@dataclass(frozen=True)
class Delivery:
    payload: Json
    msg_id: str
    query: str
    verified: bool
    answered: int

    @property
    def status(self) -> str:
        return str(self.payload["status"])


class Receiver:
    """A webhook endpoint that verifies and records every delivery (thread-safe)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.deliveries: list[Delivery] = []
        self.fail_completed = 0  # answer 500 to this many final deliveries first
        self.fail_all = False

    def clear(self) -> None:
        with self._cond:
            self.deliveries.clear()
            self.fail_completed, self.fail_all = 0, False

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            body = await request.body()
            try:
                verify(SECRET, request.headers, body, now=time.time())
                verified = True
            except InvalidSignature:
                verified = False
            payload = json.loads(body)
            with self._cond:
                final = payload["status"] in ("succeeded", "failed", "canceled", "aborted")
                answer = 500 if self.fail_all or (final and self.fail_completed > 0) else 200
                if final and answer == 500 and self.fail_completed > 0:
                    self.fail_completed -= 1
                msg_id = request.headers["webhook-id"]
                self.deliveries.append(
                    Delivery(payload, msg_id, request.url.query, verified, answer)
                )
                self._cond.notify_all()
            return Response(status_code=answer)

        return app

    def wait_for(self, predicate: Callable[[list[Delivery]], bool]) -> list[Delivery]:
        with self._cond:
            assert self._cond.wait_for(lambda: predicate(self.deliveries), WAIT_S)
            return list(self.deliveries)


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, str]]:
    hooks = Receiver()
    with serve(hooks.app()) as url:
        yield hooks, f"{url}/hook?generation_id=gen-1"


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    with serve(create_emulator_app(CONFIG)) as url:
        yield url


@pytest.fixture
def http(emulator_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator_url, timeout=WAIT_S + 5) as client:
        client.post("/__emulator/reset").raise_for_status()
        yield client


@pytest.fixture
def hooks(receiver: tuple[Receiver, str]) -> Receiver:
    receiver[0].clear()
    return receiver[0]


@pytest.fixture
def hook_url(receiver: tuple[Receiver, str]) -> str:
    return receiver[1]


@pytest.fixture
def client(emulator_url: str, http: httpx.Client) -> Iterator[Client]:
    with replicate_client(emulator_url) as client:
        yield client


@contextmanager
def replicate_client(
    base_url: str, *, headers: dict[str, str] | None = None, timeout: httpx.Timeout | None = None
) -> Iterator[Client]:
    """The real client pointed at the emulator, its connection pool closed afterwards."""
    client = Client(api_token=TOKEN, base_url=base_url, timeout=timeout, headers=headers or {})
    try:
        yield client
    finally:
        client._client.close()


@dataclass(frozen=True)
class Hooked:
    """The emulator as the tests with webhooks drive it: the real client, plain HTTP, and the
    receiver its webhooks go to."""

    client: Client
    http: httpx.Client
    hooks: Receiver
    hook_url: str

    def predict(self, **faults: JsonValue) -> str:
        """With these fault knobs set first, one prediction whose webhooks go to the
        receiver; its id."""
        if faults:
            set_faults(self.http, **faults)
        created = self.client.predictions.create(
            model=MODEL, input={"prompt": "p"}, webhook=self.hook_url
        )
        return created.id

    def settled(self, **faults: JsonValue) -> tuple[str, Json]:
        """`predict`, then wait until it has settled: its id and the emulator's record."""
        prediction_id = self.predict(**faults)
        return prediction_id, settle(self.http, prediction_id)

    def finals(self) -> list[Delivery]:
        """The deliveries of the succeeded prediction's final webhook."""
        return [d for d in self.hooks.deliveries if d.status == "succeeded"]


@pytest.fixture
def emu(client: Client, http: httpx.Client, hooks: Receiver, hook_url: str) -> Hooked:
    return Hooked(client, http, hooks, hook_url)


def set_faults(http: httpx.Client, **faults: JsonValue) -> None:
    http.post("/__emulator/faults", json=faults).raise_for_status()


def settle(http: httpx.Client, prediction_id: str) -> Json:
    """The emulator's record once the prediction is final and all its webhooks are handled."""
    record: Json = http.get(
        f"/__emulator/predictions/{prediction_id}", params={"wait": WAIT_S}
    ).json()
    assert record["settled"], record
    return record


def progress(payload: Json) -> int:
    logs = str(payload["logs"] or "")
    bars = [line for line in logs.splitlines() if "%|" in line]
    return int(bars[-1].split("%")[0]) if bars else 0


# --- the happy path --------------------------------------------------------------------------


def test_prediction_goes_starting_processing_succeeded_with_rising_progress(
    client: Client, http: httpx.Client, hooks: Receiver, hook_url: str
) -> None:
    created = client.predictions.create(model=MODEL, input={"prompt": "a cat"}, webhook=hook_url)
    assert created.status == "starting"
    settle(http, created.id)

    statuses = [d.status for d in hooks.deliveries]
    assert statuses[0] == "starting"
    assert "processing" in statuses
    assert statuses[-1] == "succeeded"
    percents = [progress(d.payload) for d in hooks.deliveries if d.status == "processing"]
    assert len([p for p in percents if p]) >= 5
    assert percents == sorted(percents)
    assert percents[-1] == 100

    done = client.predictions.get(created.id)
    assert done.status == "succeeded"
    assert done.progress is not None
    assert done.progress.percentage == 1.0
    assert done.metrics is not None
    assert done.metrics["predict_time"] > 0
    video = httpx.get(str(done.output))
    assert video.status_code == 200
    assert video.headers["content-type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp"
    assert {"ftyp", "moov", "mdat"} <= {kind for kind, _ in top_level_boxes(video.content)}


def test_create_answers_201_with_a_replicate_shaped_prediction(http: httpx.Client) -> None:
    response = http.post(
        f"/v1/models/{MODEL}/predictions",
        json={"input": {"prompt": "a dog"}},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "starting"
    assert body["model"] == MODEL
    assert body["data_removed"] is False
    assert body["urls"]["get"].endswith(f"/v1/predictions/{body['id']}")
    for key in ("version", "logs", "output", "error", "created_at", "started_at", "metrics"):
        assert key in body


def test_webhooks_arrive_signed_with_fresh_ids_and_keep_the_query(emu: Hooked) -> None:
    emu.settled()
    deliveries = emu.hooks.deliveries
    assert len(deliveries) >= 3
    assert all(d.verified for d in deliveries)
    assert all(d.query == "generation_id=gen-1" for d in deliveries)
    ids = [d.msg_id for d in deliveries]
    assert all(i.startswith("msg_") for i in ids)
    assert len(set(ids)) == len(ids)


def test_events_filter_limits_webhooks_to_completed(emu: Hooked) -> None:
    created = emu.client.predictions.create(
        model=MODEL,
        input={"prompt": "x"},
        webhook=emu.hook_url,
        webhook_events_filter=["completed"],
    )
    settle(emu.http, created.id)
    assert [d.status for d in emu.hooks.deliveries] == ["succeeded"]


def test_prefer_wait_returns_the_finished_prediction(client: Client) -> None:
    # client.predictions.create drops `wait` on its model path; the models namespace keeps it.
    done = client.models.predictions.create(model=MODEL, input={"prompt": "a cat"}, wait=5)
    assert done.status == "succeeded"


def test_create_by_version_records_model_and_version(client: Client) -> None:
    by_ref = client.predictions.create(version="wan-video/wan:abc123", input={"prompt": "p"})
    assert (by_ref.model, by_ref.version) == ("wan-video/wan", "abc123")
    by_id = client.predictions.create(version="abc123", input={"prompt": "p"})
    assert by_id.version == "abc123"


def test_image_inputs_are_recorded_as_given(client: Client, http: httpx.Client) -> None:
    data_url = "data:image/png;base64,iVBORw0KGgo="
    for image in (data_url, "https://storage.example/signed/in.png?token=t"):
        created = client.predictions.create(model=MODEL, input={"prompt": "p", "image": image})
        recorded = client.predictions.get(created.id).input
        assert recorded is not None
        assert recorded["image"] == image
    with pytest.raises(ReplicateError) as info:
        client.predictions.create(model=MODEL, input={"prompt": "p", "image": "/etc/passwd"})
    assert info.value.status == 422


# --- auth and errors ---------------------------------------------------------------------


def test_wrong_token_is_401(emulator_url: str, http: httpx.Client) -> None:
    with replicate_client(emulator_url, headers={"Authorization": "Bearer nope"}) as bad:
        with pytest.raises(ReplicateError) as info:
            bad.predictions.create(model=MODEL, input={"prompt": "p"})
        assert info.value.status == 401
    response = http.get("/v1/predictions/anything")
    assert response.status_code == 401
    assert response.json() == {
        "title": "Unauthenticated",
        "detail": "You did not pass a valid authentication token",
        "status": 401,
    }


def test_unknown_prediction_is_404(client: Client) -> None:
    with pytest.raises(ReplicateError) as info:
        client.predictions.get("doesnotexist")
    assert info.value.status == 404


# --- fault knobs -------------------------------------------------------------------------


def test_fail_rate_one_fails_the_prediction(emu: Hooked) -> None:
    prediction_id, _ = emu.settled(fail_rate=1.0)
    failed = emu.client.predictions.get(prediction_id)
    assert failed.status == "failed"
    assert failed.error
    assert emu.hooks.deliveries[-1].status == "failed"


def test_abort_rate_one_aborts_without_starting(emu: Hooked) -> None:
    prediction_id, _ = emu.settled(abort_rate=1.0)
    # replicate 1.0.x cannot parse "aborted", so read it over plain HTTP.
    body = emu.http.get(
        f"/v1/predictions/{prediction_id}", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert body.json()["status"] == "aborted"
    assert body.json()["started_at"] is None
    assert [d.status for d in emu.hooks.deliveries] == ["starting", "aborted"]


def test_create_error_status_503_raises_replicate_error(client: Client, http: httpx.Client) -> None:
    set_faults(http, create_error_status=503)
    with pytest.raises(ReplicateError) as info:
        client.predictions.create(model=MODEL, input={"prompt": "p"})
    assert info.value.status == 503
    assert http.get("/__emulator/predictions").json() == []


def test_create_error_status_429_says_when_to_retry(http: httpx.Client) -> None:
    set_faults(http, create_error_status=429)
    response = http.post(
        f"/v1/models/{MODEL}/predictions",
        json={"input": {}},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert response.json()["status"] == 429


def test_create_delay_times_the_client_out_but_the_prediction_exists(http: httpx.Client) -> None:
    set_faults(http, create_delay_s=0.5)
    with pytest.raises(httpx.ReadTimeout):
        http.post(
            f"/v1/models/{MODEL}/predictions",
            json={"input": {"prompt": "p"}},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=0.05,
        )
    (record,) = http.get("/__emulator/predictions").json()
    assert settle(http, record["prediction"]["id"])["prediction"]["status"] == "succeeded"


def test_replicate_client_create_ignores_its_timeout(emulator_url: str, http: httpx.Client) -> None:
    # replicate 1.0.x passes timeout=None on create (unless `wait` is set), which httpx reads as
    # "no timeout": a provider adapter must bound creates itself.
    set_faults(http, create_delay_s=0.3)
    with replicate_client(emulator_url, timeout=httpx.Timeout(0.05)) as impatient:
        assert impatient.predictions.create(model=MODEL, input={"prompt": "p"}).id


def test_webhook_drop_rate_one_delivers_nothing(emu: Hooked) -> None:
    _, record = emu.settled(webhook_drop_rate=1.0)
    assert record["webhooks"]
    assert all(w["outcome"] == "dropped" for w in record["webhooks"])
    assert emu.hooks.deliveries == []


def test_duplicate_rate_one_delivers_the_completed_webhook_twice(emu: Hooked) -> None:
    emu.settled(webhook_duplicate_rate=1.0)
    finals = emu.finals()
    assert len(finals) == 2
    assert finals[0].payload == finals[1].payload
    assert finals[0].msg_id != finals[1].msg_id


def test_reorder_delivers_the_final_webhook_first(emu: Hooked) -> None:
    emu.settled(webhook_reorder=True)
    statuses = [d.status for d in emu.hooks.deliveries]
    assert statuses[0] == "succeeded"
    assert len(statuses) > 1
    assert "succeeded" not in statuses[1:]


def test_webhook_delay_still_delivers_everything(emu: Hooked) -> None:
    emu.predict(webhook_delay_s=0.01)
    delivered = emu.hooks.wait_for(lambda ds: any(d.status == "succeeded" for d in ds))
    assert delivered[0].status == "starting"
    assert all(d.verified for d in delivered)


def test_only_the_final_webhook_is_retried(emu: Hooked) -> None:
    emu.hooks.fail_all = True
    _, record = emu.settled()
    webhooks = record["webhooks"]
    assert isinstance(webhooks, list)
    attempts = {str(w["event"]): w["attempts"] for w in webhooks}
    assert attempts["start"] == 1
    assert attempts["logs"] == 1
    assert attempts["completed"] == 1 + len(CONFIG.webhook_retry_delays_s)


def test_final_webhook_is_retried_until_accepted(emu: Hooked) -> None:
    emu.hooks.fail_completed = 1
    emu.settled()
    finals = emu.finals()
    assert [d.answered for d in finals] == [500, 200]
    assert finals[0].msg_id == finals[1].msg_id  # a retry is the same message


def test_faults_round_trip(http: httpx.Client) -> None:
    set_faults(http, fail_rate=0.25, webhook_reorder=True, create_error_status=None)
    faults = http.get("/__emulator/faults").json()
    assert faults == {**CONFIG.faults.model_dump(), "fail_rate": 0.25, "webhook_reorder": True}
    http.post("/__emulator/reset").raise_for_status()
    assert http.get("/__emulator/faults").json() == CONFIG.faults.model_dump()


@pytest.mark.parametrize(
    "body",
    [
        {"fail_rate": 1.5},
        {"abort_rate": -0.1},
        {"duration_s": -1},
        {"create_error_status": 200},
        {"webhook_reorder": "maybe"},
        {"no_such_knob": 1},
        [1, 2],
    ],
)
def test_bad_faults_are_rejected_with_422(http: httpx.Client, body: JsonValue) -> None:
    response = http.post("/__emulator/faults", json=body)
    assert response.status_code == 422
    assert http.get("/__emulator/faults").json() == CONFIG.faults.model_dump()


def test_faults_in_the_config_apply_from_start() -> None:
    config = CONFIG.model_copy(update={"faults": Faults(duration_s=0.05, fail_rate=1.0)})
    with (
        serve(create_emulator_app(config)) as url,
        httpx.Client(base_url=url) as http,
        replicate_client(url) as client,
    ):
        created = client.predictions.create(model=MODEL, input={"prompt": "p"})
        assert settle(http, created.id)["prediction"]["status"] == "failed"


def test_same_seed_replays_the_same_rolls() -> None:
    first, second = Dice(7), Dice(7)
    rolls = [first.roll(0.5) for _ in range(50)]
    assert rolls == [second.roll(0.5) for _ in range(50)]
    first.reset()
    assert rolls == [first.roll(0.5) for _ in range(50)]


# --- deadlines and cancel ----------------------------------------------------------------


def test_cancel_after_aborts_a_prediction_that_never_started(
    emulator_url: str, http: httpx.Client
) -> None:
    set_faults(http, duration_s=2.0)  # 0.4 s in "starting"
    with replicate_client(emulator_url, headers={"Cancel-After": "0.05s"}) as client:
        created = client.predictions.create(model=MODEL, input={"prompt": "p"})
    prediction = settle(http, created.id)["prediction"]
    assert isinstance(prediction, dict)
    assert (prediction["status"], prediction["started_at"]) == ("aborted", None)


def test_cancel_after_cancels_a_running_prediction(emulator_url: str, http: httpx.Client) -> None:
    set_faults(http, duration_s=2.0)  # starts at 0.4 s, would finish at 2 s
    with replicate_client(emulator_url, headers={"Cancel-After": "800ms"}) as client:
        created = client.predictions.create(model=MODEL, input={"prompt": "p"})
        settle(http, created.id)
        canceled = client.predictions.get(created.id)
    assert canceled.status == "canceled"
    assert canceled.started_at is not None
    assert canceled.output is None


def test_malformed_cancel_after_is_422(emulator_url: str, http: httpx.Client) -> None:
    with (
        replicate_client(emulator_url, headers={"Cancel-After": "soon"}) as client,
        pytest.raises(ReplicateError) as info,
    ):
        client.predictions.create(model=MODEL, input={"prompt": "p"})
    assert info.value.status == 422


def test_cancel_stops_a_running_prediction(emu: Hooked) -> None:
    prediction_id = emu.predict(duration_s=30.0)
    assert emu.client.predictions.cancel(prediction_id).status == "canceled"
    settle(emu.http, prediction_id)
    assert emu.client.predictions.get(prediction_id).status == "canceled"
    assert emu.hooks.deliveries[-1].status == "canceled"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1800", 1800), ("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("250ms", 0.25)],
)
def test_cancel_after_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5x", "-1", "0", "5m30", "m"])
def test_bad_cancel_after_durations_fail(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


# --- outputs ---------------------------------------------------------------------------------


def test_large_output_is_a_valid_mp4_padded_with_a_free_box(
    client: Client, http: httpx.Client
) -> None:
    set_faults(http, output_size_bytes=3_000_000)
    created = client.predictions.create(model=MODEL, input={"prompt": "p"})
    settle(http, created.id)
    output = client.predictions.get(created.id).output
    with httpx.stream("GET", str(output)) as response:
        assert response.headers["content-length"] == "3000000"
        data = b"".join(response.iter_bytes())
    assert len(data) == 3_000_000
    boxes = top_level_boxes(data)
    assert boxes[0][0] == "ftyp"
    assert boxes[-1] == ("free", 3_000_000 - len(sample_mp4()))


def test_padding_streams_in_bounded_chunks_even_past_4_gib() -> None:
    requested = 5 * 2**30
    total = 0
    for index, chunk in enumerate(mp4_chunks(requested)):
        if index == 1:  # the padding box header: 64-bit largesize form
            assert chunk[4:8] == b"free"
            assert int.from_bytes(chunk[:4]) == 1
        assert index == 0 or len(chunk) <= CHUNK_BYTES
        total += len(chunk)
    assert total == requested


def test_tiny_padding_rounds_up_to_a_whole_box() -> None:
    natural = len(sample_mp4())
    assert padded_size(0) == natural
    assert padded_size(natural + 3) == natural + 8
    data = b"".join(mp4_chunks(natural + 3))
    assert top_level_boxes(data)[-1] == ("free", 8)


def test_unfinished_prediction_has_no_file(client: Client, http: httpx.Client) -> None:
    set_faults(http, duration_s=30.0)
    created = client.predictions.create(model=MODEL, input={"prompt": "p"})
    assert http.get(f"/files/{created.id}.mp4").status_code == 404
