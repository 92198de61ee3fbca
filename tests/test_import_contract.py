"""The import direction of DESIGN.md, checked by import-linter (pyproject.toml) and by AST."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parent.parent


def _imports(package: str) -> set[tuple[str, str]]:
    """(file, top-level module) for every import in a package's files."""
    found: set[tuple[str, str]] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {(path.name, a.name.split(".")[0]) for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add((path.name, node.module.split(".")[0]))
    return found


def test_import_linter_contracts_hold() -> None:
    assert lint_imports(no_cache=True, no_logo=True) == 0


def test_the_three_rules_of_the_issue_are_contracts() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts: dict[str, dict[str, list[str]]] = {}
    for contract in config["tool"]["importlinter"]["contracts"]:  # the first per source
        contracts.setdefault(contract["source_modules"][0], contract)
    assert {"devicectl", "drivers", "simulators"} <= set(
        contracts["protocols"]["forbidden_modules"]
    )
    assert {"devicectl", "drivers"} <= set(contracts["simulators"]["forbidden_modules"])
    assert {"devicectl", "simulators"} <= set(contracts["drivers"]["forbidden_modules"])
    ble = next(c for c in config["tool"]["importlinter"]["contracts"] if "bleak" in c["name"])
    assert {"bleak", "bumble"} <= set(ble["forbidden_modules"])
    assert ble["ignore_imports"] == ["drivers.transport.ble -> bleak"]


def test_protocols_import_only_the_standard_library() -> None:
    io_or_ours = {
        "asyncio",
        "serial",
        "serial_asyncio_fast",
        "bleak",
        "aiomqtt",
        "textual",
        "devicectl",
        "drivers",
        "simulators",
        "tui",
    }
    bad = {(f, m) for f, m in _imports("protocols") if m in io_or_ours}
    assert not bad


def test_simulators_import_protocols_and_nothing_of_ours_else() -> None:
    bad = {(f, m) for f, m in _imports("simulators") if m in {"devicectl", "drivers", "tui"}}
    assert not bad


def test_drivers_never_import_the_core_simulators_or_ui() -> None:
    bad = {(f, m) for f, m in _imports("drivers") if m in {"devicectl", "simulators", "tui"}}
    assert not bad
