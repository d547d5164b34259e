"""Fixtures of the verifier's own tests: the real exporters of the stack, and a real Prometheus.

The static checks are held against what real targets export (a twin's two /metrics pages
and the Debian node, postgres and redis exporters), read by scraping them once; the live
checks against a Prometheus started here (1 s scrapes) on a twin from twin_factory.
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from codesync_load.processes import ManagedProcess
from codesync_load.stack.ports import free_port
from codesync_load.twin_process import TwinProcess
from tests.conftest import PG_ADMIN_URL, REDIS_URL, stopped_at_exit
from tests.verify._live import LiveProm, start_prometheus

EXPORTERS = ("prometheus-node-exporter", "prometheus-postgres-exporter", "prometheus-redis-exporter")


@pytest.fixture(scope="module")
def exporter_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """job -> /metrics URL of each exporter, started on free loopback ports and stopped by PID."""
    work = tmp_path_factory.mktemp("exporters")
    urls: dict[str, str] = {}
    dsn = PG_ADMIN_URL + ("&" if "?" in PG_ADMIN_URL else "?") + "sslmode=disable"
    with stopped_at_exit() as started:
        for job, binary, args, env, ready_line in (
            ("node-exporter", EXPORTERS[0], [], None, "node_cpu_seconds_total"),
            ("postgres-exporter", EXPORTERS[1], [], {**os.environ, "DATA_SOURCE_NAME": dsn}, "pg_stat_database_xact"),
            ("redis-exporter", EXPORTERS[2], [f"--redis.addr={REDIS_URL.rsplit('/', 1)[0]}"], None, "redis_up 1"),
        ):
            port = free_port()
            proc = ManagedProcess.start(
                [binary, *args, f"--web.listen-address=127.0.0.1:{port}"],
                name=job,
                log_path=work / f"{job}.log",
                env=env,
            )
            started.append(proc)
            url = f"http://127.0.0.1:{port}/metrics"
            # Ready = its first scrape already holds what it exports once connected (the
            # postgres exporter answers before it has reached the database).
            proc.wait_until(lambda url=url, line=ready_line: line in _get(url), 20, f"exporting {ready_line}")
            urls[job] = url
        yield urls


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=3) as response:
        return response.read().decode("utf-8", errors="replace")


def twin_scrape_targets(twin: TwinProcess) -> dict[str, tuple[str, str | None]]:
    yjs_http = twin.yjs_url.replace("ws://", "http://", 1)
    return {
        "codesync-backend": (f"{twin.api_url}/metrics", None),
        "codesync-yjs": (f"{yjs_http}/metrics", None),
    }


@pytest.fixture
def live_prom_for(tmp_path: Path) -> Iterator[Callable[[TwinProcess], LiveProm]]:
    """Start a Prometheus scraping a twin's two processes every second; stopped at teardown."""
    with stopped_at_exit() as started:

        def start(twin: TwinProcess) -> LiveProm:
            work = tmp_path / f"prom{len(started)}"
            work.mkdir()
            live = start_prometheus(
                work, {"codesync-backend": f"127.0.0.1:{twin.api_port}", "codesync-yjs": f"127.0.0.1:{twin.yjs_port}"}
            )
            started.append(live)
            return live

        yield start
