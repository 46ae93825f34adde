"""modal_app.py: imports with no network or token, and declares the web functions we expect."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

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


def test_sweeper_runs_on_a_cron_schedule_and_is_not_a_web_endpoint() -> None:
    info = modal_app.sweep.info()
    assert info.schedule is not None
    assert "Cron" in info.schedule
    assert "* * * * *" in info.schedule
    assert info.web_info is None
    assert info.timeout == modal_app.SWEEP_TIMEOUT


def test_video_copy_is_a_retried_background_function() -> None:
    info = modal_app.keep_video.info()
    assert info.web_info is None
    assert info.timeout == modal_app.COPY_TIMEOUT
    assert info.max_retries == 2


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
