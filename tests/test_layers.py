"""The layer rule: each app imports only from apps to its left,
core ← audit ← registry ← lineage ← approvals ← oversight ← modelcards."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["core", "audit", "registry", "lineage", "approvals", "oversight", "modelcards"]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(LAYERS)


@pytest.mark.parametrize("app", LAYERS)
def test_an_app_imports_nothing_to_its_right(app):
    allowed = set(LAYERS[: LAYERS.index(app) + 1])
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports(path) - allowed)
        for path in (ROOT / app).rglob("*.py")
        if _imports(path) - allowed
    }
    assert offenders == {}
