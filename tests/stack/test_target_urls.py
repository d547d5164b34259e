"""A malformed --prometheus-url (or --alertmanager-url) is refused before any probe, in the one
line --api-url gets: `run`, `gate` and `stack up --backend external` alike (issue 12, Deliver).

No process starts: the URL check runs before the target is probed or a twin is started.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.stack._support import run_cli

TARGET = ("--api-url", "http://127.0.0.1:1", "--yjs-url", "ws://127.0.0.1:2")
PROM_LINE = (
    "codesync-load: error: Prometheus URL 'localhost:9090' is not an http(s) URL; "
    "pass e.g. http://127.0.0.1:9090 (--prometheus-url)"
)


@pytest.mark.parametrize(
    "command",
    [("run",), ("gate",), ("stack", "up", "--backend", "external")],
    ids=["run", "gate", "stack-up-external"],
)
def test_a_prometheus_url_without_scheme_is_one_line_naming_the_option(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    result = run_cli(*command, *TARGET, "--prometheus-url", "localhost:9090", env={"CODESYNC_STATE_DIR": str(tmp_path)})
    assert (result.returncode, result.stderr.splitlines()) == (2, [PROM_LINE]), result.stdout + result.stderr


def test_a_port_out_of_range_is_named_like_the_api_urls(tmp_path: Path) -> None:
    result = run_cli(
        "stack",
        "up",
        "--backend",
        "external",
        *TARGET,
        "--prometheus-url",
        "http://127.0.0.1:9090",
        "--alertmanager-url",
        "http://127.0.0.1:99999",
        env={"CODESYNC_STATE_DIR": str(tmp_path)},
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "codesync-load: error: Alertmanager URL 'http://127.0.0.1:99999' has no valid port (1-65535); "
        "pass e.g. http://127.0.0.1:9093 (--alertmanager-url)"
    ]
