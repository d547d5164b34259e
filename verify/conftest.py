"""Options of the pytest verification suite: the same inputs `codesync-load verify` takes.

    $ pytest verify --run-dir reports/runs/R --prometheus-url http://127.0.0.1:9090
    $ pytest verify --run-dir R --prometheus-url URL --grafana-url http://127.0.0.1:3001 --grafana-user admin
    $ BUGSINK_TOKEN=T pytest verify --run-dir R --prometheus-url URL --tracker-url http://127.0.0.1:8000
    $ pytest verify --rules monitoring/guide/alerts.yml --dashboard monitoring/guide/codesync.json \\
          --contract codesync_load/contract/guide.toml -k static

Each check is one test, its id the check's name (e.g. `test_check[counters-match-ledger]`).
A check whose inputs were not given is skipped with the reason; a HarnessError (a file that
does not exist, an unreachable Prometheus) fails the test with that one line.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from verify.context import VerifyContext, VerifyOptions
from verify.grafana_api import GrafanaAccess, GrafanaAPI, attach_grafana
from verify.tracker import TrackerAccess, access_from_options, attach_tracker


def _add(group: pytest.OptionGroup, *args: str, **kwargs: object) -> None:
    """Add an option unless the root conftest.py already defines it (--prometheus-url does)."""
    with contextlib.suppress(ValueError):
        group.addoption(*args, **kwargs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("codesync-verify", "verification suite inputs (see verify/context.py)")
    _add(group, "--run-dir", default=None, help="run directory of `codesync-load run` (holds ledger.json)")
    _add(group, "--prometheus-url", default=None, help="the stack's Prometheus")
    _add(group, "--rules", action="append", default=None, help="alert rules file (repeatable; default monitoring/)")
    _add(group, "--rule-tests", action="append", default=None, help="promtool test file (default <rules>/tests/*.yml)")
    _add(group, "--dashboard", default=None, help="Grafana dashboard JSON (default monitoring/grafana/...)")
    _add(group, "--prometheus-config", default=None, help="prometheus.yml (default monitoring/prometheus.yml)")
    _add(group, "--alertmanager-config", default=None, help="alertmanager.yml (default monitoring/)")
    _add(group, "--contract", default=None, help="metric contract TOML (default: the backend's names)")
    _add(group, "--expectations", default=None, help="reconciliation table TOML (default: by contract name)")
    _add(group, "--grafana-url", default=None, help="Grafana to ask for every panel too (default: none)")
    _add(group, "--grafana-user", default=None, help="Grafana user (password from $GRAFANA_PASSWORD)")
    _add(group, "--grafana-token", default=None, help="Grafana service account token (default $GRAFANA_TOKEN)")
    _add(group, "--tracker-url", default=None, help="Bugsink your CodeSync reports to (default: none)")
    _add(group, "--tracker-token", default=None, help="its API token (default $BUGSINK_TOKEN)")
    _add(group, "--tracker-project", type=int, default=None, help="the project id in its DSN (default 1)")
    _add(group, "--tracker-release", default=None, help="the release CodeSync sets (default: any, consistent)")


def tracker_from_pytest(config: pytest.Config) -> TrackerAccess | None:
    """The Bugsink given by --tracker-url (the same access `codesync-load verify` builds);
    a wrong combination is a usage error of one line, before any check runs."""
    from codesync_load.errors import HarnessError

    try:
        return access_from_options(
            config.getoption("--tracker-url"),
            config.getoption("--tracker-token"),
            config.getoption("--tracker-project"),
            config.getoption("--tracker-release"),
            None,
        )
    except HarnessError as err:
        raise pytest.UsageError(str(err)) from None


def pytest_configure(config: pytest.Config) -> None:
    tracker_from_pytest(config)  # bad --tracker-* options: one line, nothing collected


def options_from_pytest(config: pytest.Config) -> VerifyOptions:
    opts = VerifyOptions()
    run_dir = config.getoption("--run-dir")
    opts.run_dir = Path(run_dir) if run_dir else None
    opts.prometheus_url = config.getoption("--prometheus-url")
    if config.getoption("--rules"):
        opts.rules = [Path(p) for p in config.getoption("--rules")]
    if config.getoption("--rule-tests"):
        opts.rule_tests = [Path(p) for p in config.getoption("--rule-tests")]
    for name in ("dashboard", "prometheus_config", "alertmanager_config", "contract", "expectations"):
        value = config.getoption("--" + name.replace("_", "-"))
        if value:
            setattr(opts, name, Path(value))
    return opts


def grafana_from_pytest(config: pytest.Config) -> GrafanaAccess | None:
    """The Grafana given by --grafana-url (the same access `codesync-load verify` builds)."""
    url = config.getoption("--grafana-url")
    if not url:
        return None
    token = config.getoption("--grafana-token") or os.environ.get("GRAFANA_TOKEN") or None
    return GrafanaAccess(url, config.getoption("--grafana-user"), os.environ.get("GRAFANA_PASSWORD") or None, token)


@pytest.fixture(scope="session")
def verify_context(request: pytest.FixtureRequest) -> Iterator[VerifyContext]:
    ctx = VerifyContext(options_from_pytest(request.config))
    attach_tracker(ctx, tracker_from_pytest(request.config))
    access = grafana_from_pytest(request.config)
    if access is None:
        yield ctx
        return
    grafana = attach_grafana(ctx, GrafanaAPI.from_access(access))
    try:
        yield ctx
    finally:
        grafana.close()
