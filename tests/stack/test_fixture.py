"""The root conftest's `codesync_stack` fixture by default: a local stack, compressed, torn down."""

from __future__ import annotations

from pathlib import Path

import yaml

from codesync_load.stack.ports import accepts_connections
from codesync_load.stack.state import pid_alive
from tests.stack._support import LOCAL_COMPONENTS, run_fixture_probe


def test_default_fixture_is_a_compressed_local_stack_torn_down_at_session_end(tmp_path: Path) -> None:
    result, seen = run_fixture_probe(tmp_path, "--stack-state-dir", str(tmp_path / "state"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert seen["backend"] == "local" and seen["ready"] is True
    assert set(seen["components"]) == set(LOCAL_COMPONENTS)
    run_dir = Path(seen["run_dir"])
    prom = yaml.safe_load((run_dir / "prometheus.yml").read_text())
    assert prom["global"]["scrape_interval"] == "2s"
    rules = yaml.safe_load((run_dir / "rules-alerts.yml").read_text())
    fors = {r["alert"]: r["for"] for g in rules["groups"] for r in g["rules"]}
    assert fors["HighErrorRate"] == "10s" and fors["ServiceDown"] == "4s"  # 5m and 2m divided by 30
    # The session has ended: every process the fixture started is gone, every port closed.
    assert [name for name, c in seen["components"].items() if pid_alive(c["pid"])] == []
    port = int(seen["prometheus_url"].rsplit(":", 1)[1])
    assert not accepts_connections(port)
    assert not (tmp_path / "state" / "stack.json").exists()


def test_a_stack_that_cannot_come_up_fails_the_session_with_its_one_line(tmp_path: Path) -> None:
    result, seen = run_fixture_probe(tmp_path, "--stack-backend", "external", "--api-url", "http://127.0.0.1:9")
    assert seen is None
    assert result.returncode == 1
    assert (
        "the external stack did not come up: the external backend needs --prometheus-url; pass the URL of each"
        in result.stdout
    )
