"""The house rules a reviewer should not have to check by eye: no import
cycles between modules, package `__init__`s that import nothing (the hooks'
import budget), and a core that does no I/O. The layers themselves are
import-linter contracts in pyproject.toml (`lint-imports`, run by scripts/test)."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("lockd", "mcp_tools")
# What the core may not touch: files, sockets, processes, databases, the event loop.
IO_MODULES = {"os", "socket", "subprocess", "sqlite3", "asyncio", "threading", "aiosqlite",
              "psycopg", "psutil", "pathlib", "shutil", "tempfile", "urllib", "http"}  # fmt: skip


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
    return out


def test_no_module_imports_itself_through_others() -> None:
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    cycles = []
    for importer in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(importer):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back:
                cycles.append(" -> ".join((importer, *back)))
    assert cycles == []


INITS = sorted(str(p.relative_to(ROOT)) for k in PACKAGES for p in (ROOT / k).rglob("__init__.py"))


@pytest.mark.parametrize("init", INITS)
def test_package_inits_import_nothing(init: str) -> None:
    """`lockd guard --hook` and the pre-commit hook load only the modules they use."""
    assert [m for m in _imports(ROOT / init) if m != "__future__"] == []


@pytest.mark.parametrize("module", sorted(p.name for p in (ROOT / "lockd" / "core").glob("*.py")))
def test_the_core_does_no_io(module: str) -> None:
    used = {m.split(".")[0] for m in _imports(ROOT / "lockd" / "core" / module)}
    assert used & IO_MODULES == set()
