"""The stack under test for every pytest run: one `codesync_stack` per session.

    $ pytest verify/                                      # local stack, rules compressed 30x
    $ pytest verify/ --stack-backend external --api-url http://staging:4000 \\
          --prometheus-url http://staging:9090 --metrics-token "$METRICS_TOKEN"

    def test_something(codesync_stack):
        requests.get(codesync_stack.api_url + "/health")

Options fall back to environment variables (CODESYNC_STACK_BACKEND, CODESYNC_API_URL,
CODESYNC_YJS_URL, CODESYNC_PROMETHEUS_URL, CODESYNC_ALERTMANAGER_URL, METRICS_TOKEN), so a CI
job can point the same suite elsewhere without editing commands. The stack module is
imported only when the fixture is used: collecting tests stays fast.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from codesync_load.stack import Stack

# option -> environment fallback
_URL_OPTIONS = {
    "api_url": "CODESYNC_API_URL",
    "yjs_url": "CODESYNC_YJS_URL",
    "prometheus_url": "CODESYNC_PROMETHEUS_URL",
    "alertmanager_url": "CODESYNC_ALERTMANAGER_URL",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("codesync-stack", "the CodeSync stack under test (fixture codesync_stack)")
    group.addoption(
        "--stack-backend",
        choices=("local", "compose", "external"),
        default=None,
        help="local processes (default), compose, or external URLs",
    )
    for option in _URL_OPTIONS:
        group.addoption("--" + option.replace("_", "-"), default=None, help=f"external backend: {option}")
    group.addoption("--metrics-token", default=None, help="bearer token for /metrics (external/compose)")
    group.addoption(
        "--stack-compress", type=float, default=30.0, help="local: divide alert windows by this (default 30)"
    )
    group.addoption("--stack-scrape-interval", default="2s", help="local: scrape/evaluation interval (default 2s)")
    group.addoption("--stack-fault", action="append", default=[], help="local: twin fault (repeatable)")
    group.addoption("--stack-state-dir", default=None, help="local: state directory (default: a pytest temp dir)")


def stack_options(config: pytest.Config, default_state_dir: str) -> tuple[str, dict]:
    """(backend, open_stack keyword arguments) from the command line and the environment."""
    backend = config.getoption("--stack-backend") or os.environ.get("CODESYNC_STACK_BACKEND") or "local"
    token = config.getoption("--metrics-token") or os.environ.get("METRICS_TOKEN") or None
    if backend == "external":
        urls = {
            name: config.getoption("--" + name.replace("_", "-")) or os.environ.get(env) or None
            for name, env in _URL_OPTIONS.items()
        }
        return backend, {**urls, "metrics_token": token, "record_state": False}
    # local, and compose (its local-images mode renders monitoring/ as the local stack does)
    return backend, {
        "state_dir": config.getoption("--stack-state-dir") or default_state_dir,
        "compress": config.getoption("--stack-compress"),
        "scrape_interval": config.getoption("--stack-scrape-interval"),
        "faults": config.getoption("--stack-fault"),
        "metrics_token": token,
    }


@pytest.fixture(scope="session")
def codesync_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A ready stack for the whole session, taken down at the end (pass, fail or Ctrl-C)."""
    from codesync_load.errors import HarnessError
    from codesync_load.stack import open_stack

    backend, options = stack_options(request.config, str(tmp_path_factory.mktemp("codesync-stack")))
    stack = open_stack(backend, **options)
    problem = None
    try:
        stack.up()
    except HarnessError as err:
        problem = str(err)
    if problem is not None:  # outside the except: the report shows the one line, no chained traceback
        pytest.fail(f"the {backend} stack did not come up: {problem}", pytrace=False)
    try:
        yield stack
    finally:
        stack.down()
