"""A Prometheus that stops answering mid-verify: the checks that need it are `error`, the rest run.

Issue #10 (Deliver 4): an error from Prometheus itself ended the whole `verify` with one line,
so the static checks that need no Prometheus gave no verdict. Here a real Prometheus answers
the first checks and is then stopped (by PID), as a crashed or restarted server would be.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from codesync_load.errors import HarnessError
from tests.verify._live import start_prometheus
from verify.checks import REGISTRY
from verify.context import VerifyContext, VerifyOptions
from verify.prom import Prom, PrometheusLost

NEEDS_PROM = "rules-series-exported"  # reads the exported series from Prometheus
ALSO_NEEDS_PROM = "alert-delivery-prometheus-has-alertmanager"
STATIC = "alerts-thresholds-match-annotations"


def test_checks_that_need_a_lost_prometheus_are_errors_naming_it_and_the_others_run(tmp_path: Path) -> None:
    live = start_prometheus(tmp_path, {})
    try:
        ctx = VerifyContext(VerifyOptions(prometheus_url=live.url))
        before = REGISTRY[ALSO_NEEDS_PROM].run(ctx)
        # the bare Prometheus has no Alertmanager: a judged failure, not an error
        assert before.verdict == "fail", before.render()
    finally:
        live.stop()

    started = time.monotonic()
    lost = REGISTRY[NEEDS_PROM].run(ctx)
    again = REGISTRY[ALSO_NEEDS_PROM].run(ctx)
    static = REGISTRY[STATIC].run(ctx)

    assert lost.verdict == "error"
    assert lost.summary.startswith("cannot judge (")
    assert f"Prometheus at {live.url} stopped answering during this verification" in lost.summary
    assert lost.evidence is None and "Traceback" not in lost.render()
    # the next check meets the same reason at once, not a second round of timeouts
    assert again.verdict == "error"
    assert again.summary.endswith(lost.summary.split("): ", 1)[1]), again.summary
    assert static.verdict == "pass", static.render()
    assert time.monotonic() - started < 60


def test_a_prometheus_that_never_answered_still_ends_verify_with_one_line(tmp_path: Path) -> None:
    """Before its first answer a failure is the user's URL, not a lost server: one line, exit 2."""
    from codesync_load.stack.ports import free_port

    prom = Prom(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(HarnessError) as raised:
        prom.names()
    assert not isinstance(raised.value, PrometheusLost)
    assert "is unreachable" in str(raised.value)
