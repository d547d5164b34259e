"""The whole suite on the local stack (twin, Prometheus, Alertmanager, the three exporters):
every check passes on a healthy run, and the guide's files are reported precisely.

Uses the session's `codesync_stack` (root conftest.py). The run's ledger names the stack's
Prometheus in its meta, so `codesync-load verify RUN` needs no URL option.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from codesync_load.contract import CONTRACT_DIR
from codesync_load.stack import Stack
from tests.stack._support import run_cli
from tests.verify._live import KnownTraffic, drive_known_traffic
from verify.checks import REGISTRY
from verify.context import MONITORING, VerifyContext, VerifyOptions, scraped_until_now
from verify.prom import Prom


@pytest.fixture(scope="module")
def stack_run(codesync_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> KnownTraffic:
    prom = Prom(codesync_stack.prometheus_url)
    return drive_known_traffic(codesync_stack.api_url, prom, tmp_path_factory.mktemp("stackrun") / "run")


def verify(*args: str) -> subprocess.CompletedProcess:
    """`codesync-load verify ARGS` as a child process (tests/stack/_support.run_cli)."""
    return run_cli("verify", *args, timeout=180)


SUITE_GROUPS = ("static", "alerts", "dashboard", "reconcile")


def test_healthy_stack_passes_every_check(stack_run: KnownTraffic, codesync_stack: Stack) -> None:
    # The recorded stack names its error tracker (server-errors-reach-tracker reads it).
    state = getattr(codesync_stack, "state_dir", None)
    done = verify(str(stack_run.run_dir), *(["--state-dir", str(state)] if state else []))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    verdicts = {line.split()[0]: line.split()[1] for line in lines[2 : 2 + len(REGISTRY)]}
    assert set(verdicts) == set(REGISTRY)
    suite = [name for name, chk in REGISTRY.items() if chk.group in SUITE_GROUPS]
    assert len(suite) == 23
    # The Grafana check needs a Grafana (a compose stack's, or --grafana-url): not applicable here.
    grafana = "dashboard-grafana-matches-prometheus"
    assert verdicts.pop(grafana) == "N/A"
    assert {verdicts[name] for name in suite if name != grafana} == {"PASS"}
    # Checks of other groups (live alert scenarios, integrity) were not asked for (no --live).
    assert set(verdicts.values()) <= {"PASS", "N/A"}


def test_guide_files_and_names_are_reported_precisely(stack_run: KnownTraffic) -> None:
    guide = MONITORING / "guide"
    done = verify(
        str(stack_run.run_dir),
        "--rules",
        str(guide / "alerts.yml"),
        "--dashboard",
        str(guide / "codesync.json"),
        "--contract",
        str(CONTRACT_DIR / "guide.toml"),
    )
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    table = {line.split()[0]: line.split()[1] for line in out.splitlines()[2 : 2 + len(REGISTRY)]}
    for name in (
        "rules-series-exported",
        "dashboard-series-exported",
        "dashboard-panels-return-data",
        "dashboard-panels-job-scoped",
        "metrics-present",
        "counters-match-ledger",
    ):
        assert table[name] == "FAIL", out
    assert (
        "4 series used by rules are not exported: http_request_duration_seconds_bucket, http_requests_total, "
        "rate_limit_hits_total, ws_connection_failures_total" in out
    )
    # The guide's Memory and CPU panels read process metrics of every job (exporters included).
    assert "Memory Usage" in out and "process_resident_memory_bytes" in out
    # The guide's names are absent from what the backend exports, each named.
    for name in ("http_requests_total", "sessions_active", "ws_connections_active", "rate_limit_hits_total"):
        assert name in out


def test_live_flag_runs_the_integrity_checks_against_the_target(codesync_stack: Stack, stack_run: KnownTraffic) -> None:
    """`--live` gives the security/integrity checks the stack's endpoints; without it they skip."""
    done = verify(
        str(stack_run.run_dir),
        "--live",
        "--api-url",
        codesync_stack.api_url,
        "--yjs-url",
        codesync_stack.yjs_url,
        "--metrics-token",
        codesync_stack.metrics_token or "",
        "--check",
        "metrics-token-enforced",
        "--check",
        "csrf-enforced",
        "--check",
        "no-yjs-edit-lost",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    verdicts = {line.split()[0]: line.split()[1] for line in done.stdout.splitlines()[2:5]}
    assert verdicts == {"metrics-token-enforced": "PASS", "csrf-enforced": "PASS", "no-yjs-edit-lost": "PASS"}


def test_live_flag_without_a_complete_target_is_one_line(stack_run: KnownTraffic) -> None:
    done = verify(str(stack_run.run_dir), "--live", "--api-url", "http://127.0.0.1:9", "--check", "csrf-enforced")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "codesync-load: error: --api-url and --yjs-url go together; pass both (or neither, to use the recorded stack)"
    ]  # one target resolver (codesync_load/target.py) for every command says it


def test_scrape_barrier_returns_once_every_target_job_is_scraped_after_the_call(codesync_stack: Stack) -> None:
    """The barrier before a load: each API and Yjs job has a scrape that began after the call."""
    prom = Prom(codesync_stack.prometheus_url)
    jobs = VerifyContext(VerifyOptions(prometheus_url=codesync_stack.prometheus_url)).target_jobs()
    assert jobs  # the stack's twin is scraped on both ports
    called = time.time()
    scraped_until_now(codesync_stack.prometheus_url)
    assert all(prom.last_scrape(job) > called for job in jobs)


def test_a_counter_born_at_the_runs_last_request_is_shown_when_verified_at_once(
    codesync_stack: Stack, tmp_path: Path
) -> None:
    """The known traffic's only rate-limit rejection is its last request: its series is born in
    the first scrape after the run, and a rate() panel has a point only from the second one.
    Verified the moment the run ends (as a gate does), the panel check must wait for that scrape
    instead of calling the Rate Limit Hits panel empty (CI saw that false alarm)."""
    prom = Prom(codesync_stack.prometheus_url)
    run = drive_known_traffic(codesync_stack.api_url, prom, tmp_path / "run")
    ctx = VerifyContext(VerifyOptions(run_dir=run.run_dir))
    result = REGISTRY["dashboard-panels-return-data"].run(ctx)
    assert result.verdict == "pass", result.render()
    assert result.evidence is not None
    assert "Rate Limit Hits" not in {row[0] for row in result.evidence.rows}, result.render()
