"""Alert scenarios against a target the harness cannot break: generated series, the user's rules.

Real promtool on real rule files; the target's stack is never asked to break (no twin, no
fault): a TargetPool hands out the one stack and starts nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from codesync_load.stack.external import ExternalStack
from verify.assets import load_rules, load_yaml
from verify.checks import REGISTRY
from verify.context import MONITORING, VerifyContext, VerifyOptions
from verify.live import TargetPool, attach_live
from verify.live.scenarios import SCENARIOS
from verify.live.synthetic import judge_with_promtool

ROUTE = load_yaml(MONITORING / "alertmanager.yml")["route"]


@pytest.mark.parametrize(
    ("alert", "receivers"),
    [
        ("HighErrorRate", {"harness", "warning-batched"}),
        ("HighResponseTime", {"harness", "warning-batched"}),
        ("ServiceDown", {"harness", "critical-immediate"}),
    ],
)
def test_a_generated_cause_fires_the_working_rule_and_names_its_routes(
    alert: str, receivers: set[str], tmp_path: Path
) -> None:
    rules_file = MONITORING / "alerts.yml"
    outcome = judge_with_promtool(SCENARIOS[alert], load_rules([rules_file]), [rules_file], ROUTE, tmp_path)
    assert (outcome.problem, outcome.fired, outcome.receivers) == ("", True, receivers), outcome.promtool_says
    assert outcome.test_file == tmp_path / f"alert-{alert}-generated.yml"


def test_a_rule_on_names_the_target_does_not_export_never_fires(tmp_path: Path) -> None:
    """The guide's HighErrorRate reads http_requests_total{status=...}: the contract's series never move it."""
    rules_file = MONITORING / "guide" / "alerts.yml"
    outcome = judge_with_promtool(SCENARIOS["HighErrorRate"], load_rules([rules_file]), [rules_file], ROUTE, tmp_path)
    assert outcome.problem == "" and outcome.fired is False
    assert any("HighErrorRate" in line or "expected" in line for line in outcome.promtool_says)


def test_scenarios_on_an_unbreakable_target_say_how_they_were_judged_and_start_nothing(tmp_path: Path) -> None:
    stack = ExternalStack(api_url="http://127.0.0.1:9", yjs_url="ws://127.0.0.1:9", record_state=False)
    pool = TargetPool(stack, "on api http://127.0.0.1:9, yjs ws://127.0.0.1:9")
    ctx = VerifyContext(VerifyOptions(run_dir=tmp_path))
    attach_live(ctx, pool=pool)
    result = REGISTRY["alert-fires-ServiceDown"].run(ctx)
    assert result.verdict == "pass", result.render()
    assert result.summary == (
        "ServiceDown fires and routes to critical-immediate, harness (judged by promtool on generated series with "
        "your rules and routes: the harness cannot break the target on api http://127.0.0.1:9, yjs ws://127.0.0.1:9)"
    )
    assert pool.started == 0 and (tmp_path / "verify" / "alert-ServiceDown-generated.yml").is_file()
