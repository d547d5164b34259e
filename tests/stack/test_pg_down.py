"""PostgreSQLDown in a sped-up stack (1 s scrapes, --compress 30): with the database stopped,
postgres-exporter answers about 1 s late; the rendered postgres-exporter job (2 s interval and
timeout) must still read pg_up == 0, a sample, not a gap, and the alert must fire.

The database is a throwaway cluster of our own (codesync_load.pgcluster), never the machine's
shared PostgreSQL; its directory and processes are removed afterwards.
"""

from __future__ import annotations

import time
from pathlib import Path

import requests

from codesync_load.pgcluster import ThrowawayCluster
from codesync_load.stack import promapi
from codesync_load.stack.local import LocalStack


def _values(stack: LocalStack, promql: str) -> list[float]:
    query = requests.utils.quote(promql)
    result = promapi.get_json(f"{stack.prometheus_url}/api/v1/query?query={query}")["data"]["result"]
    return [float(r["value"][1]) for r in result]


def _pg_up(stack: LocalStack) -> list[float]:
    return _values(stack, 'pg_up{job="postgres-exporter"}')


def _wait(what: str, probe, timeout: float) -> object:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = probe()
        if seen:
            return seen
        time.sleep(0.5)
    raise AssertionError(f"{what} not within {timeout:g} s (last seen: {seen!r})")


def test_pg_up_reads_zero_and_postgresql_down_fires_while_the_database_is_stopped(tmp_path: Path) -> None:
    with ThrowawayCluster(tmp_path) as pg:
        stack = LocalStack(
            state_dir=tmp_path / "state",
            compress=30,
            scrape_interval="1s",
            database_url=pg.url,
            twin_args=["--bcrypt-rounds", "4"],
        )
        stack.up()
        try:
            assert _pg_up(stack) == [1.0]
            pg.stop()
            # a value of 0 (the exporter's verdict), not an empty result (a failed scrape)
            _wait("pg_up == 0", lambda: _pg_up(stack) == [0.0], 15.0)
            assert _values(stack, 'up{job="postgres-exporter"}') == [1.0]  # the scrape itself succeeded
            # for: 2m at 30x is 4 s: firing within a few 2 s scrapes after the first 0
            firing = _wait(
                "PostgreSQLDown firing",
                lambda: [
                    a
                    for a in promapi.get_json(f"{stack.prometheus_url}/api/v1/alerts")["data"]["alerts"]
                    if a["labels"]["alertname"] == "PostgreSQLDown" and a["state"] == "firing"
                ],
                20.0,
            )
            assert firing[0]["labels"]["severity"] == "critical"
        finally:
            stack.down()
