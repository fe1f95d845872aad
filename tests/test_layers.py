"""The apps form a chain; each imports only from apps to its left (DESIGN: layout and layers)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Left to right: an app may import any app before it, never one after it.
LAYERS = [
    "core",
    "audit",
    "registry",
    "lineage",
    "approvals",
    "oversight",
    "modelcards",
    "mlflow_api",
    "webhooks",
]


def _imported_apps(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names & set(LAYERS)


def _sources(app: str) -> list[Path]:
    return sorted(p for p in (ROOT / app).rglob("*.py") if "migrations" not in p.parts)


NOT_APPS = {"config", "tests", "bench", "scripts"}


def test_every_app_package_is_placed_in_the_chain():
    from django.conf import settings

    packages = {
        p.parent.name
        for p in (*ROOT.glob("*/__init__.py"), *ROOT.glob("*/apps.py"))
        if p.parent.name not in NOT_APPS
    }
    installed = {
        name.split(".")[0]
        for name in settings.INSTALLED_APPS
        if (ROOT / name.split(".")[0]).is_dir()
    }
    assert packages | installed == set(LAYERS), (
        f"place these apps in LAYERS: {sorted((packages | installed) - set(LAYERS))}; "
        f"not apps any more: {sorted(set(LAYERS) - (packages | installed))}"
    )


@pytest.mark.parametrize("app", LAYERS)
def test_app_imports_only_apps_to_its_left(app):
    allowed = set(LAYERS[: LAYERS.index(app) + 1])
    offending = {
        str(path.relative_to(ROOT)): sorted(_imported_apps(path) - allowed)
        for path in _sources(app)
        if _imported_apps(path) - allowed
    }
    assert offending == {}, f"{app} imports apps to its right: {offending}"


def test_the_check_sees_an_import_against_the_arrow(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from approvals import services\nimport modelcards.tasks\n")
    assert _imported_apps(bad) == {"approvals", "modelcards"}
