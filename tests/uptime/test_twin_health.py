"""/health with the database stopped: CodeSync's (the twin's default) says 200, a fixed one 503.

A real PostgreSQL (a throwaway cluster of the test's own, never the machine's shared one) is
stopped under a running twin; the route is asked over a real socket.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from codesync_load.pgcluster import ThrowawayCluster
from codesync_load.twin_process import start_twin


@pytest.fixture()
def cluster() -> Iterator[ThrowawayCluster]:
    with ThrowawayCluster() as pg:
        yield pg
    assert not pg.root.exists()  # removed afterwards


def _health(api_url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(api_url + "/health", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.mark.parametrize(
    ("extra", "down_status", "down_body"),
    [((), 200, "ok"), (("--health-checks-db",), 503, "error")],
    ids=["codesync-default", "fixed"],
)
def test_health_with_the_database_stopped(
    tmp_path: Path, cluster: ThrowawayCluster, extra: tuple[str, ...], down_status: int, down_body: str
) -> None:
    twin = start_twin(tmp_path, env={"DATABASE_URL": cluster.url}, extra_args=["--bcrypt-rounds", "4", *extra])
    try:
        assert _health(twin.api_url)[0] == 200
        cluster.stop()
        status, body = _health(twin.api_url)
        assert (status, body["status"]) == (down_status, down_body)
        cluster.start()
        assert _health(twin.api_url)[0] == 200  # the fixed one reconnects at its next SELECT 1
    finally:
        twin.stop()


def test_the_fault_list_names_the_default_and_its_fix() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "codesync_load.cli", "twin", "--list-faults"], capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0
    entry = listed.stdout.split("health-ignores-db", 1)[1].split("\n\n")[0]
    assert "ON BY DEFAULT, as in CodeSync" in entry and "--health-checks-db" in entry
