"""The package layers: the core never imports the verifier, and commands/ is the only composition root.

Why a test: a cycle hidden in a function-local import (the core building verify's results,
verify starting load through a CLI module) works until someone moves a module; reading every
import statement, function-local ones included, keeps the layers as the README states them.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    """Every module an `import` or `from ... import` anywhere in the file names (nested ones too)."""
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def offenders(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in paths:
        for module in sorted(imported_modules(path)):
            if any(module == f or module.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(REPO)} imports {module}")
    return found


def core_modules() -> list[Path]:
    """codesync_load/ without its composition root (commands/ and the cli entry point)."""
    root = REPO / "codesync_load"
    return [p for p in root.rglob("*.py") if "commands" not in p.relative_to(root).parts and p.name != "cli.py"]


def test_the_core_never_imports_the_verifier_or_the_load_tests() -> None:
    assert offenders(core_modules(), ("verify", "loadtests")) == []


def test_only_the_cli_imports_a_command_module() -> None:
    everything = [
        p
        for top in ("codesync_load", "verify", "scenarios", "loadtests", "twin", "reports")
        for p in (REPO / top).rglob("*.py")
        if "commands" not in p.relative_to(REPO).parts and p.name != "cli.py"
    ]
    assert offenders(everything, ("codesync_load.commands",)) == []


def test_the_check_runner_needs_no_protocol_client() -> None:
    assert offenders([REPO / "verify" / "checks" / "base.py"], ("scenarios",)) == []


def test_the_result_types_are_the_cores() -> None:
    """verify re-exports the core's classes: one CheckResult, whichever module a caller names."""
    from codesync_load.results import CheckResult, Evidence
    from verify.checks.base import CheckResult as VerifyResult
    from verify.checks.base import Evidence as VerifyEvidence

    assert VerifyResult is CheckResult and VerifyEvidence is Evidence


def test_is_server_error_is_500_to_599() -> None:
    from codesync_load.errors import is_server_error

    assert [s for s in (499, 500, 506, 511, 599, 600) if is_server_error(s)] == [500, 506, 511, 599]
