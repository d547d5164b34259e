"""twin/Dockerfile and .dockerignore, checked without Docker: the image's command is a valid
twin command line, and the build context that .dockerignore lets through installs a package
with the twin and its metric contract in it.

    $ .venv/bin/pytest tests/monitoring/test_twin_image.py
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.monitoring._files import REPO
from twin import cli as twin_cli

DOCKERFILE = REPO / "twin" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    lines, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            lines.append(current.strip())
            current = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def ignore_patterns() -> list[str]:
    patterns = []
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            assert not line.startswith("!"), "exceptions are not modelled by this test; keep .dockerignore simple"
            patterns.append(line.rstrip("/"))
    return patterns


def ignored(relative: str, patterns: list[str]) -> bool:
    """Docker's rule for these patterns: a path is out if it or a parent directory matches."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        if pattern.startswith("**/"):
            if any(fnmatch.fnmatchcase(part, pattern[3:]) for part in parts):
                return True
        elif any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes):
            return True
    return False


def test_base_image_user_ports_and_command() -> None:
    steps = instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1] not in {"root", "0"}
    exposed = {port for op, args in steps if op == "EXPOSE" for port in args.split()}
    assert exposed == {"4000", "4001"}
    assert any(op == "RUN" and "pip install" in args for op, args in steps)


def test_the_command_is_a_valid_twin_command_line_on_every_interface() -> None:
    command = json.loads(next(args for op, args in instructions() if op == "CMD"))
    assert command[:2] == ["codesync-load", "twin"]
    parser = argparse.ArgumentParser(prog="codesync-load")
    twin_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(command[1:])
    assert (args.host, args.api_port, args.yjs_port) == ("0.0.0.0", 4000, 4001)
    assert twin_cli.config_from_args(args).host == "0.0.0.0"


def test_dockerignore_keeps_the_package_and_drops_local_state() -> None:
    patterns = ignore_patterns()
    for needed in ("pyproject.toml", "README.md", "codesync_load/cli.py", "codesync_load/contract/backend.toml"):
        assert not ignored(needed, patterns), needed
    assert not ignored("twin/server.py", patterns)
    for dropped in (".venv/bin/python", ".git/HEAD", "tests/conftest.py", "twin/__pycache__/x.pyc", "reports/runs/r1"):
        assert ignored(dropped, patterns), dropped


def test_the_build_context_installs_the_twin_and_its_contract(tmp_path: Path) -> None:
    """What `pip install /src` in the image gets: setuptools' build_py (the step that fills a
    wheel) and egg_info run on a copy of the context that .dockerignore lets through."""
    patterns = ignore_patterns()
    context = tmp_path / "context"
    for root, dirs, files in os.walk(REPO):
        base = Path(root).relative_to(REPO)
        dirs[:] = [d for d in dirs if not ignored((base / d).as_posix(), patterns)]
        for name in files:
            if not ignored((base / name).as_posix(), patterns):
                (context / base).mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(root) / name, context / base / name)
    assert not (context / ".venv").exists()
    (tmp_path / "meta").mkdir()
    result = subprocess.run(
        [
            sys.executable,
            "-W",
            "ignore",
            "-c",
            "from setuptools import setup; setup()",
            "-q",
            "egg_info",
            "--egg-base",
            str(tmp_path / "meta"),
            "build_py",
            "--build-lib",
            str(tmp_path / "lib"),
        ],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for member in ("twin/cli.py", "twin/server.py", "codesync_load/cli.py", "codesync_load/contract/backend.toml"):
        assert (tmp_path / "lib" / member).is_file(), f"the image would lack {member}"
    (entry_points,) = (tmp_path / "meta").glob("*.egg-info/entry_points.txt")
    assert "codesync-load = codesync_load.cli:main" in entry_points.read_text()
