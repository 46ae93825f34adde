"""The import graph, read with `ast`: no circles, imports only point downward, `modal` only in
modal_app.py, FastAPI/Starlette only in the web layer, dev-only code never deployed.

    core <- db, provider, storage, payments <- flows <- web <- wiring <- functions <- modal_app

local/, bench/ and tests/ may import all of that; shared/ and functions/ never import them.
Every import counts, also those inside functions and under TYPE_CHECKING: a lazy import is
still a dependency. The checker runs on the real tree and, to show it can fail, on small trees
with one planted violation each.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("shared", "functions", "local", "bench", "tests")

# Deployed code, bottom up. A module may import its own layer's package and lower layers.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("shared.core",),
    ("shared.db", "shared.provider", "shared.storage", "shared.payments"),
    ("shared.flows",),
    ("shared.web",),
    ("shared.wiring",),
    ("functions",),
    ("modal_app",),
)
DEV_ONLY = ("local", "bench", "tests")
WEB_LIBRARIES = ("fastapi", "starlette")
# modal_app serves the apps functions/ build (it names FastAPI as their type, nothing more).
WEB_ALLOWED = ("shared.web", "functions", "modal_app", *DEV_ONLY)
# The test of modal_app.py reads the Modal functions it declares.
MODAL_ALLOWED = ("modal_app", "tests.test_modal_app")


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files(root: Path) -> dict[str, Path]:
    files = {module_name(root, p): p for pkg in PACKAGES for p in (root / pkg).rglob("*.py")}
    if (root / "modal_app.py").exists():
        files["modal_app"] = root / "modal_app.py"
    return files


def imports(root: Path, path: Path, known: set[str]) -> set[str]:
    """Every module `path` imports: ours resolved to the module (not the package), foreign
    ones by their full dotted name."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module_name(root, path).split(".")
                if path.name != "__init__.py":
                    package.pop()
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return found


def graph(root: Path) -> dict[str, set[str]]:
    files = source_files(root)
    known = set(files)
    return {name: imports(root, path, known) for name, path in files.items()}


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _layer(module: str) -> tuple[int, str] | None:
    for level, packages in enumerate(LAYERS):
        for package in packages:
            if _within(module, (package,)):
                return level, package
    return None


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The circles between our modules (one per strongly connected component; Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in edges:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def violations(root: Path) -> list[str]:
    edges = graph(root)
    problems = [f"circle: {' <-> '.join(c)}" for c in cycles(edges)]
    for module, targets in sorted(edges.items()):
        here = _layer(module)
        for target in sorted(targets):
            if _within(target, ("modal",)) and module not in MODAL_ALLOWED:
                problems.append(f"{module} imports modal (only modal_app.py may)")
            if _within(target, WEB_LIBRARIES) and not _within(module, WEB_ALLOWED):
                problems.append(f"{module} imports {target} (only shared.web and functions may)")
            if here is None:
                continue  # dev-only code may import anything
            if _within(target, DEV_ONLY):
                problems.append(f"{module} imports dev-only {target}")
            there = _layer(target)
            if there is None or there[1] == here[1]:
                continue
            if there[0] > here[0]:
                problems.append(f"{module} imports {target}, a higher layer")
            elif there[0] == here[0]:
                problems.append(f"{module} imports {target}, a sibling of the same layer")
    return problems


def test_the_tree_keeps_its_import_rules() -> None:
    assert violations(ROOT) == []


def test_every_deployed_package_is_in_a_layer() -> None:
    unplaced = [
        name
        for name in source_files(ROOT)
        if _within(name, ("shared", "functions")) and name != "shared" and _layer(name) is None
    ]
    assert unplaced == []


def test_every_package_says_what_it_may_import() -> None:
    silent = [
        str(init.relative_to(ROOT))
        for init in (ROOT / "shared").rglob("__init__.py")
        if "import" not in (ast.get_docstring(ast.parse(init.read_text())) or "")
    ]
    assert silent == []


def plant(root: Path, files: dict[str, str]) -> Path:
    for name, text in {"shared/__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in path.relative_to(root).parents:
            init = root / parent / "__init__.py"
            if parent != Path(".") and not init.exists():
                init.write_text("")
        path.write_text(text)
    return root


CLEAN = {
    "shared/core/errors.py": "class AppError(Exception): ...\n",
    "shared/flows/submit.py": "from shared.core.errors import AppError\n",
    "shared/web/app.py": "import fastapi\nfrom shared.flows import submit\n",
    "functions/status.py": "from shared.web.app import fastapi\n",
    "local/devserver.py": "from functions import status\nimport fastapi\n",
}


@pytest.mark.parametrize(
    ("planted", "expected"),
    [
        (
            {
                "shared/core/a.py": "from shared.core import b\n",
                "shared/core/b.py": "import shared.core.a\n",
            },
            "circle: shared.core.a <-> shared.core.b",
        ),
        ({"shared/flows/copy.py": "import modal\n"}, "shared.flows.copy imports modal"),
        (
            {"functions/job.py": "def f():\n    from modal import App\n"},
            "functions.job imports modal",
        ),
        ({"shared/flows/http.py": "from starlette.requests import Request\n"}, "imports starlette"),
        ({"shared/core/web.py": "from fastapi import FastAPI\n"}, "imports fastapi"),
        (
            {"shared/web/tokens.py": "from local.devserver import status\n"},
            "imports dev-only local",
        ),
        ({"functions/x.py": "import tests.support\n"}, "imports dev-only tests"),
        ({"shared/core/up.py": "from shared.flows.submit import AppError\n"}, "a higher layer"),
        (
            {"shared/flows/w.py": "from shared import wiring\n", "shared/wiring.py": ""},
            "a higher layer",
        ),
        (
            {"shared/db/x.py": "from shared.storage.port import P\n", "shared/storage/port.py": ""},
            "a sibling of the same layer",
        ),
        (
            {"shared/flows/rel.py": "from ..web import app\n"},
            "shared.flows.rel imports shared.web.app, a higher layer",
        ),
    ],
)
def test_a_planted_violation_is_found(
    tmp_path: Path, planted: dict[str, str], expected: str
) -> None:
    root = plant(tmp_path, {**CLEAN, **planted})
    found = violations(root)
    assert any(expected in problem for problem in found), found


def test_a_clean_planted_tree_passes(tmp_path: Path) -> None:
    assert violations(plant(tmp_path, CLEAN)) == []
