"""modal_app.py: imports with no network or token, and declares the web functions we expect."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import cast

import modal
import pytest

import modal_app

ROOT = Path(__file__).resolve().parent.parent
WEB_FUNCTIONS: dict[str, modal.Function[..., object, object]] = {
    "text_to_video": modal_app.text_to_video,
    "status": modal_app.status,
    "webhook": modal_app.webhook,
    "controls": modal_app.controls,
    "image_to_video": modal_app.image_to_video,
    "stripe_webhook": modal_app.stripe_webhook,
    "account": modal_app.account,
    "admin": modal_app.admin,
}


@pytest.mark.parametrize("name", sorted(WEB_FUNCTIONS))
def test_each_endpoint_is_a_concurrent_web_function(name: str) -> None:
    info = WEB_FUNCTIONS[name].info()
    assert info.web_info is not None, f"{name} is not a web endpoint"
    assert info.concurrency_info is not None
    assert info.concurrency_info.max_inputs in (modal_app.MAX_INPUTS, modal_app.UPLOAD_MAX_INPUTS)
    assert info.timeout == modal_app.TIMEOUT
    assert info.secrets == ["modal.Secret.from_name('wan-backend')"]


@pytest.mark.parametrize("name", sorted(WEB_FUNCTIONS))
def test_a_container_finds_each_web_function_under_its_own_name_and_label(name: str) -> None:
    # A container imports the function's module and reads the attribute its qualname names; the
    # functions are declared by one helper, so a wrong name would only fail on Modal.
    from modal._utils.async_utils import synchronizer

    function = synchronizer._translate_in(WEB_FUNCTIONS[name])  # type: ignore[no-untyped-call]
    assert function._source_info.module_name == "modal_app"
    assert getattr(modal_app, function._source_info.implementation_name) is WEB_FUNCTIONS[name]
    assert function._webhook_config.requested_suffix == "wan-" + name.replace("_", "-")


def test_sweeper_runs_on_a_cron_schedule_and_is_not_a_web_endpoint() -> None:
    info = modal_app.sweep.info()
    assert info.schedule is not None
    assert "Cron" in info.schedule
    assert "* * * * *" in info.schedule
    assert info.web_info is None
    assert info.timeout == modal_app.SWEEP_TIMEOUT


def test_video_copy_is_a_background_function_the_sweep_retries() -> None:
    # Not retried by Modal: a failure is recorded (not raised) and the sweep retries it, so a
    # Modal retry would only find the claim held or released for later.
    info = modal_app.keep_video.info()
    assert info.web_info is None
    assert info.timeout == modal_app.COPY_TIMEOUT
    assert not info.max_retries


def test_importing_modal_app_builds_no_endpoint() -> None:
    # The FastAPI apps (and their settings and clients) are built in the container, not here.
    probe = (
        "import sys, modal_app; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('functions', 'shared')))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODAL_", "SUPABASE_"))}
    out = subprocess.run(  # noqa: S603 - our own interpreter, a fixed script
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
        check=True, timeout=60,
    )  # fmt: skip
    assert out.stdout.strip() == "[]"


def test_only_modal_app_imports_modal() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("functions", "shared", "local")
        for path in (ROOT / folder).rglob("*.py")
        if re.search(r"^\s*(import modal|from modal)", path.read_text(), re.MULTILINE)
    ]
    assert offenders == []


def _image_layers(image: modal.Image) -> list[tuple[list[str], dict[str, str]]]:
    """The Dockerfile commands and build-context files of every layer of an image, read offline.

    Modal keeps each layer's Dockerfile function in the closure of its private loader; walking it
    is the only way to see what `modal deploy` would build without a network (modal is pinned by
    uv.lock, so this cannot drift silently).
    """
    from modal._image import _Image
    from modal._utils.async_utils import synchronizer

    specs: list[tuple[list[str], dict[str, str]]] = []
    todo: list[_Image] = [synchronizer._translate_in(image)]  # type: ignore[no-untyped-call]
    while todo:
        layer = todo.pop()
        load = cast(types.FunctionType, layer._load)
        cells = {
            name: cell.cell_contents
            for name, cell in zip(load.__code__.co_freevars, load.__closure__ or (), strict=True)
        }
        build = cells.get("dockerfile_function")
        if build is not None:
            spec = build("2025.06")
            specs.append((list(spec.commands), dict(spec.context_files)))
        for value in cells.values():
            values = value.values() if isinstance(value, dict) else [value]
            todo += [v for v in values if isinstance(v, _Image)]
    return specs


def test_image_installs_exactly_the_locked_versions() -> None:
    layers = _image_layers(modal_app.image)
    commands = [c for cmds, _ in layers for c in cmds]
    syncs = [c for c in commands if " sync " in c and c.startswith("RUN ")]
    assert len(syncs) == 1, commands
    assert "--frozen" in syncs[0]
    # No version typed by hand: no layer of ours installs with pip.
    ours = [c for cmds, _ in layers if cmds[0] == "FROM base" for c in cmds]
    assert not [c for c in ours if "pip install" in c], ours
    context = {k: v for _, files in layers for k, v in files.items()}
    assert Path(context["/.uv.lock"]) == ROOT / "uv.lock"
    assert Path(context["/.pyproject.toml"]) == ROOT / "pyproject.toml"


def test_image_uv_is_the_version_the_makefile_bootstraps() -> None:
    makefile = (ROOT / "Makefile").read_text()
    pinned = re.search(r"^UV_VERSION := (\S+)$", makefile, re.MULTILINE)
    assert pinned is not None
    assert pinned.group(1) == modal_app.UV_VERSION
    commands = [c for cmds, _ in _image_layers(modal_app.image) for c in cmds]
    assert f"COPY --from=ghcr.io/astral-sh/uv:{pinned.group(1)} /uv /.uv/uv" in commands


def test_webhook_url_is_learned_from_modal_when_unset() -> None:
    env: dict[str, str] = {}
    modal_app.webhook_url_at_start(env, lambda: "https://ws--wan-webhook.modal.run/")
    assert env["PUBLIC_WEBHOOK_URL"] == "https://ws--wan-webhook.modal.run/api/webhooks/replicate"


def test_an_explicit_webhook_url_wins_and_modal_is_not_asked() -> None:
    env = {"PUBLIC_WEBHOOK_URL": "https://api.example.com/api/webhooks/replicate"}

    def lookup() -> str | None:
        raise AssertionError("Modal was asked although the URL is set")

    modal_app.webhook_url_at_start(env, lookup)
    assert env["PUBLIC_WEBHOOK_URL"] == "https://api.example.com/api/webhooks/replicate"


def test_no_web_url_leaves_the_setting_unset_for_the_start_check() -> None:
    env: dict[str, str] = {"PUBLIC_WEBHOOK_URL": " "}
    modal_app.webhook_url_at_start(env, lambda: None)
    assert env["PUBLIC_WEBHOOK_URL"] == " "


def test_the_lookup_asks_for_this_apps_webhook_function(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, str]] = []

    class Deployed:
        def get_web_url(self) -> str:
            return "https://ws--wan-webhook.modal.run"

    def from_name(app_name: str, name: str) -> Deployed:
        asked.append((app_name, name))
        return Deployed()

    monkeypatch.setattr(modal.Function, "from_name", from_name)
    env: dict[str, str] = {}
    modal_app.webhook_url_at_start(env)
    # Modal names a function after its Python definition: `def webhook`, the webhook app.
    assert asked == [(modal_app.APP_NAME, "webhook")]
    assert modal_app.webhook.info().web_info is not None
    assert env["PUBLIC_WEBHOOK_URL"] == "https://ws--wan-webhook.modal.run/api/webhooks/replicate"


def test_a_deploy_needs_no_public_webhook_url_in_the_secret() -> None:
    source = (ROOT / "modal_app.py").read_text()
    required = source[
        source.index("required_keys=[") : source.index("]", source.index("required_keys=["))
    ]
    assert "PUBLIC_WEBHOOK_URL" not in required


def test_image_trusts_the_system_ca_directory_read_lazily() -> None:
    """ca-certificates installed, and SSL_CERT_DIR pointing at its hashed directory: every
    httpx client of ours builds its TLS context from it (shared.core.http)."""
    from shared.core.http import SYSTEM_CA_DIR

    commands = [c for cmds, _ in _image_layers(modal_app.image) for c in cmds]
    assert "RUN apt-get install -y ca-certificates" in commands
    assert f"ENV SSL_CERT_DIR={SYSTEM_CA_DIR}" in commands
    assert modal_app.SSL_CERT_DIR == SYSTEM_CA_DIR
