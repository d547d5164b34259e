"""gauges-match-source-of-truth against twins that restart themselves (real PostgreSQL and Redis).

The healthy twin passes, across a restart too (it sets its sessions gauge from storage when it
starts); docs-gauge-per-connection fails on the documents gauge and sessions-gauge-reset on the
sessions gauge after the restart, each with the numbers in the evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from codesync_load.twin_process import TwinProcess, start_twin
from tests.conftest import new_redis_prefix, stopped_at_exit
from tests.verify_live.conftest import TOKEN
from verify.checks import REGISTRY, CheckResult
from verify.context import VerifyContext, VerifyOptions
from verify.live import LiveTarget, attach_live

CHECK = "gauges-match-source-of-truth"


@pytest.fixture
def restartable(tmp_path: Path, pg_url: str, redis_url: str, run_id: str) -> Iterator[Callable[..., LiveTarget]]:
    """A twin with `faults` as a LiveTarget whose restart stops its process and starts a new one
    on the same ports, the same database and Redis prefix (what a deployment's restart does)."""
    with stopped_at_exit() as started:

        def make(*faults: str) -> LiveTarget:
            env = {
                "DATABASE_URL": pg_url,
                "REDIS_URL": redis_url,
                "CODESYNC_REDIS_PREFIX": new_redis_prefix(run_id),
                "METRICS_TOKEN": TOKEN,
                "SENTRY_DSN": "",
            }

            def launch(api_port: int = 0, yjs_port: int = 0) -> TwinProcess:
                twin = start_twin(
                    tmp_path / f"twin{len(started)}",
                    faults=faults,
                    env=env,
                    extra_args=["--bcrypt-rounds", "4"],
                    name=f"twin{len(started)}",
                    api_port=api_port,
                    yjs_port=yjs_port,
                )
                started.append(twin)
                return twin

            current = [launch()]

            def restart() -> None:
                old = current[0]
                old.stop()
                current[0] = launch(old.api_port, old.yjs_port)

            return LiveTarget(current[0].api_url, current[0].yjs_url, TOKEN, restart=restart)

        yield make


def run(target: LiveTarget) -> CheckResult:
    ctx = VerifyContext(VerifyOptions())
    attach_live(ctx, target=target)
    result = REGISTRY[CHECK].run(ctx)
    assert result.verdict != "error", result.render()
    return result


def rows(result: CheckResult) -> dict[str, tuple]:
    assert result.evidence is not None
    return {row[0]: row for row in result.evidence.rows}


def test_the_healthy_twin_keeps_its_gauges_true_across_a_restart(restartable) -> None:
    result = run(restartable())
    assert result.verdict == "pass", result.render()
    assert result.summary.endswith(", also after a restart")
    found = rows(result)
    assert found["codesync_yjs_documents_active rise, 2 connections to doc A + 1 to doc B"][1] == "+2, +2"
    assert found["codesync_sessions_active after the restart"][3] is True
    # The gauge after the restart is what storage holds, the same as before it.
    before = found["codesync_sessions_active before the restart"][1]
    assert found["codesync_sessions_active after the restart"][1] == before


def test_a_documents_gauge_counting_connections_fails(restartable) -> None:
    result = run(restartable("docs-gauge-per-connection"))
    assert result.verdict == "fail", result.render()
    assert result.summary.startswith(
        "codesync_yjs_documents_active counts connections, not documents: it rose by 3 for 3 connections to 2 documents"
    )


def test_a_sessions_gauge_reset_by_the_restart_fails(restartable) -> None:
    result = run(restartable("sessions-gauge-reset"))
    assert result.verdict == "fail", result.render()
    assert "codesync_sessions_active is 0 after the restart while the API lists" in result.summary
    found = rows(result)
    assert found["codesync_sessions_active after the restart"][1:4:2] == ("0", False)


def test_without_a_restart_command_the_restart_half_is_not_claimed(restartable) -> None:
    target = restartable()
    plain = LiveTarget(target.api_url, target.yjs_url, target.metrics_token)
    result = run(plain)
    assert result.verdict == "pass", result.render()
    assert result.summary.endswith("(no restart command given: not judged across a restart)")
