"""Only the exporter module imports prometheus_client: components keep stdlib counters (TEAM_RULES 8)."""

from __future__ import annotations

import ast
from pathlib import Path

import orbitmq

EXPORTER = Path(orbitmq.__file__).parent / "cli" / "metrics.py"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_prometheus_client_is_imported_only_by_the_exporter() -> None:
    root = Path(orbitmq.__file__).parent
    importers = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*.py")
        if any(n.split(".")[0] == "prometheus_client" for n in _imports(p))
    }
    assert importers == {"cli/metrics.py"}


def test_the_exporter_is_imported_only_by_shells() -> None:
    root = Path(orbitmq.__file__).parent
    for p in root.rglob("*.py"):
        layer = p.relative_to(root).parts[0]
        if "orbitmq.cli.metrics" in _imports(p):
            assert layer in ("cli", "testing"), p
