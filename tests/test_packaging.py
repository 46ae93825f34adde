"""The wheel carries the SQL: an installed `wanctl migrate` applies every migration."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built in-process with the build backend itself: no network, no isolated build env.
    from hatchling.builders.wheel import WheelBuilder

    out = tmp_path_factory.mktemp("dist")
    built = list(WheelBuilder(str(ROOT)).build(directory=str(out), versions=["standard"]))
    assert len(built) == 1
    return Path(built[0])


def _sql_files() -> list[str]:
    return sorted(
        p.relative_to(ROOT / "migrations").as_posix() for p in (ROOT / "migrations").rglob("*.sql")
    )


def test_wheel_contains_every_migration_and_definition(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = sorted(
        n.removeprefix("shared/migrations/") for n in names if n.startswith("shared/migrations/")
    )
    assert _sql_files()
    assert shipped == _sql_files()


def test_wheel_contains_the_supabase_bootstrap(wheel: Path) -> None:
    assert "local/bootstrap.sql" in zipfile.ZipFile(wheel).namelist()


def test_installed_copy_finds_the_shipped_migrations(wheel: Path, tmp_path: Path) -> None:
    zipfile.ZipFile(wheel).extractall(tmp_path)
    probe = (
        "from shared.db.migrate import MIGRATIONS_DIR, load_definitions, load_migrations; "
        "print(MIGRATIONS_DIR); print(len(load_migrations()) + len(load_definitions()))"
    )
    # cwd first on sys.path: the extracted wheel's `shared`, not the source tree's.
    out = subprocess.run(  # noqa: S603 - our own interpreter, a fixed script
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
        check=True, timeout=60,
    )  # fmt: skip
    where, count = out.stdout.split()
    assert Path(where) == tmp_path / "shared" / "migrations"
    assert int(count) == len(_sql_files())
