"""The compose backend: a clear refusal without a Docker engine, a real stack with one."""

from __future__ import annotations

from pathlib import Path

import pytest

from codesync_load.errors import HarnessError
from codesync_load.stack import open_stack, promapi
from codesync_load.stack.compose import docker_engine_problem
from tests.stack._support import run_cli

PROBLEM = docker_engine_problem()


@pytest.mark.skipif(PROBLEM is None, reason="a Docker engine is reachable here; the refusal cannot be seen")
def test_without_a_docker_engine_compose_says_so_and_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(HarnessError) as err:
        open_stack("compose").up()
    assert str(err.value) == f"no Docker engine is reachable ({PROBLEM}); use --backend local"
    result = run_cli("stack", "up", "--backend", "compose", "--state-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"codesync-load: error: no Docker engine is reachable ({PROBLEM}); use --backend local"
    ]


@pytest.mark.docker
@pytest.mark.skipif(PROBLEM is not None, reason=f"no Docker engine is reachable ({PROBLEM})")
def test_compose_stack_comes_up_with_every_target_up() -> None:
    with open_stack("compose") as stack:
        assert stack.api_url and stack.prometheus_url and stack.alertmanager_url
        assert promapi.targets_not_up(stack.prometheus_url) == {}
        assert promapi.alertmanager_ready(stack.alertmanager_url)
