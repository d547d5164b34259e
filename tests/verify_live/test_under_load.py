"""Integrity checks run during load stay exact, and bad input to the live parts is one clear line.

The checks claim they may run while a load run is going on: they spend fresh users and
fresh client addresses only. Here another user floods search past its limit (moving the same
counter family, other series) and quiet editors type on Yjs while the checks run.
"""

from __future__ import annotations

import pytest

from codesync_load.errors import HarnessError
from codesync_load.twin_process import TwinProcess
from tests.verify_live.conftest import live_context
from verify.checks import REGISTRY
from verify.live import LiveTarget, StackPool, local_stack_factory
from verify.live.driver import poll
from verify.live.limits import exhaust
from verify.live.scrape import read_metrics, sample
from verify.live.traffic import Traffic


def test_integrity_checks_are_exact_while_other_users_load_the_target(start_target) -> None:
    twin: TwinProcess = start_target()
    target = LiveTarget(twin.api_url, twin.yjs_url, "verify-live-metrics-token")
    with Traffic.start(target, "search-flood") as flood, Traffic.start(target, "healthy-mix") as quiet:
        # Under load = the flooding user is already being refused when the checks start.
        assert poll(lambda: flood.outcomes["429"] > 0 and quiet.outcomes["typed"] > 0, 15), flood.summary()
        results = {
            name: REGISTRY[name].run(live_context(twin))
            for name in ("rate-limit-counted-search", "rate-limit-counted-files", "no-yjs-edit-lost")
        }
        flood_summary, quiet_summary = flood.summary(), quiet.summary()
    for result in results.values():
        assert result.verdict == "pass", result.render()
    assert results["rate-limit-counted-search"].measured == "30 admitted, 3 refused, counter 3"
    assert results["rate-limit-counted-files"].measured == "60 admitted, 3 refused, counter 3"
    # The load was real: the flooding user was refused meanwhile, the quiet ones never.
    assert "429: " in flood_summary, flood_summary
    assert "429" not in quiet_summary and "typed: " in quiet_summary, quiet_summary
    total = sample(read_metrics(twin.api_url, target.metrics_token), "codesync_rate_limit_hits_total", type="API")
    assert total > 6  # the family moved by more than the checks' own 6 refusals


def test_unknown_names_are_one_line_errors(start_target, tmp_path) -> None:
    twin: TwinProcess = start_target()
    target = LiveTarget(twin.api_url, twin.yjs_url, None)
    with pytest.raises(HarnessError, match=r"^unknown traffic recipe 'flood'; use one of sessions-list, "):
        Traffic.start(target, "flood")
    with pytest.raises(HarnessError, match=r"^unknown limiter 'chat'; use one of files, search, socketio, yjs$"):
        exhaust(target, "chat")
    pool = StackPool(local_stack_factory(tmp_path))
    with pytest.raises(HarnessError, match=r"^unknown stack profile 'broken'; use one of healthy, faulty$"):
        pool.get("broken")
    assert pool.started == 0


def test_a_wrong_metrics_token_for_reading_counters_is_one_line(start_target) -> None:
    twin: TwinProcess = start_target()
    with pytest.raises(HarnessError, match=r"/metrics answered HTTP 403; pass the target's METRICS_TOKEN$"):
        read_metrics(twin.api_url, "not-the-token")
