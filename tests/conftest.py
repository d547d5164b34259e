"""Fixtures for the harness's own tests: a database of this run, a Redis prefix of this run,
and twins started as real processes on free loopback ports.

PostgreSQL and Redis are shared by every run on the machine: each test run creates its own
database (dropped at the end) and uses its own Redis key prefix, and assumes nothing is empty.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol, TypeVar

import psycopg
import pytest
import redis

from codesync_load.twin_process import TwinProcess, start_twin

PG_ADMIN_URL = os.environ.get("CODESYNC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CODESYNC_TEST_REDIS", "redis://127.0.0.1:6379/0")
RUN_ID = uuid.uuid4().hex[:10]


def as_if_in_a_terminal() -> None:
    """`preexec_fn` for a child a test will press Ctrl-C on: SIGINT handled as in a terminal.

    A shell that starts a job in the background without job control (`./test &`, some CI
    runners) hands its children SIGINT ignored, and Python keeps an inherited SIG_IGN: the
    child would never see the test's Ctrl-C and would run to its end as if none came.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


REPO_ROOT = Path(__file__).resolve().parents[1]
# No test may pick up a stack this machine's user recorded: every command resolves its target
# from the recorded stack (codesync_load/target.py), so a stray record would change verdicts.
if not os.environ.get("CODESYNC_STATE_DIR"):
    import tempfile

    os.environ["CODESYNC_STATE_DIR"] = tempfile.mkdtemp(prefix="codesync-test-state-")


def run_probe(script: Path, *args: str, timeout: float = 120) -> dict:
    """Run a probe script in its own process (Locust/gevent must not load in pytest's) and
    return the JSON object its last stdout line holds; a failed probe fails with its stderr."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    done = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO_ROOT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# What a twin of the tests starts from: embedded mode, nothing inherited from the shell.
ISOLATED_ENV = {"DATABASE_URL": "", "REDIS_URL": "", "METRICS_TOKEN": "", "SENTRY_DSN": ""}


class Stoppable(Protocol):
    def stop(self) -> None: ...


S = TypeVar("S", bound=Stoppable)


@contextlib.contextmanager
def stopped_at_exit() -> Iterator[list[S]]:
    """A list to append every process a fixture starts to; all are stopped when the block ends.

        with stopped_at_exit() as started:
            started.append(start_twin(...))
            yield ...

    Why one helper: every fixture that starts processes must stop each of them, pass or
    fail, in start order, without one failed stop leaving the others running.
    """
    started: list[S] = []
    try:
        yield started
    finally:
        for proc in started:
            with contextlib.suppress(Exception):
                proc.stop()


def _pg_available() -> bool:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def run_id() -> str:
    return RUN_ID


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL database created for this test run and dropped after it."""
    if not _pg_available():
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}; start it (see README) or set CODESYNC_TEST_PG")
    name = f"codesync_test_{RUN_ID}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """Redis URL; every test that uses it also takes `redis_prefix`, so runs never share keys."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError:
        pytest.fail(f"Redis is not reachable at {REDIS_URL}; start it (see README) or set CODESYNC_TEST_REDIS")
    yield REDIS_URL
    # Remove every key this run created.
    for key in client.scan_iter(match=f"cstest:{RUN_ID}:*", count=1000):
        client.delete(key)
    client.close()


def new_redis_prefix(run_id: str) -> str:
    """A Redis key prefix of its own under this run's, so the redis_url fixture removes its keys.

    Takes the run id from the `run_id` fixture: this module may also be imported a second
    time as `tests.conftest`, with a RUN_ID of its own.
    """
    return f"cstest:{run_id}:{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def redis_prefix(request: pytest.FixtureRequest) -> str:
    return new_redis_prefix(RUN_ID)


@pytest.fixture
def twin_factory(tmp_path: Path) -> Iterator[Callable[..., TwinProcess]]:
    """Start twins as child processes; every one is stopped at teardown, pass or fail.

    Defaults: SQLite in tmp_path, in-process state, no METRICS_TOKEN, bcrypt cost 4 (the
    cost-12 path has its own test), 60 s rate windows. Keyword arguments go to start_twin.
    """
    with stopped_at_exit() as started:

        def factory(
            *,
            faults: tuple[str, ...] | list[str] = (),
            env: dict[str, str] | None = None,
            extra_args: tuple[str, ...] | list[str] = (),
            name: str | None = None,
            **kwargs,
        ) -> TwinProcess:
            base_env = {**ISOLATED_ENV, **(env or {})}
            args = list(extra_args)
            if "--bcrypt-rounds" not in args:
                args += ["--bcrypt-rounds", "4"]
            twin = start_twin(
                tmp_path,
                faults=faults,
                env=base_env,
                extra_args=args,
                name=name or f"twin{len(started)}",
                **kwargs,
            )
            started.append(twin)
            return twin

        yield factory


@pytest.fixture
def twin(twin_factory: Callable[..., TwinProcess]) -> TwinProcess:
    """A healthy twin in its embedded default mode (SQLite, in-process state)."""
    return twin_factory()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Long scenarios (marker `slow`) run only with CODESYNC_SLOW=1, so CI stays within budget."""
    if os.environ.get("CODESYNC_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="long scenario: set CODESYNC_SLOW=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def gate_can_run() -> None:
    """In CI the gate tests must run: a missing binary (prometheus, alertmanager, promtool) or
    module fails them with the reason, where elsewhere they are skipped. Session-scoped, so it
    decides before any module fixture starts a gate."""
    from tests.gates.test_gate_command import _not_usable

    reason = _not_usable()
    if reason is not None:
        pytest.fail(f"CI runs the gate, but {reason}", pytrace=False)
