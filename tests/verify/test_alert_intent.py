"""Alert rules held to what they say: ratio alerts at every traffic scale (promtool), quoted thresholds.

The project's monitoring/alerts.yml passes both; a rules file with an error-rate alert written
as an absolute rate, and one whose annotation quotes 5 % over an expression comparing with 0.1,
fails each in the check named for it, with the alert named.
"""

from __future__ import annotations

from pathlib import Path

from verify.checks import REGISTRY
from verify.context import VerifyContext, VerifyOptions

WRONG = """
groups:
  - name: wrong
    rules:
      - alert: HighErrorRate
        expr: sum by (job) (rate(codesync_http_requests_total{job="codesync-backend", status_code=~"5.."}[5m])) > 5
        for: 5m
        labels: {severity: warning}
        annotations:
          summary: "High HTTP error rate"
          description: "Error rate above 5 % of API responses."
      - alert: ErrorShareQuotedWrong
        expr: |
          sum by (job) (rate(codesync_http_requests_total{job="codesync-backend", status_code=~"5.."}[5m]))
            / sum by (job) (rate(codesync_http_requests_total{job="codesync-backend"}[5m])) > 0.1
        for: 5m
        labels: {severity: warning}
        annotations:
          description: "{{ $value | humanizePercentage }} of responses were 5xx (threshold 5%)."
      - alert: RejectionsPerSecond
        expr: sum by (job) (rate(codesync_rate_limit_hits_total{job="codesync-backend"}[5m])) > 10
        for: 5m
        labels: {severity: warning}
        annotations:
          description: "{{ $value | printf \\"%.2f\\" }} rejections/s (threshold 10/s)."
"""


def test_the_projects_alerts_keep_their_stated_intent() -> None:
    ctx = VerifyContext(VerifyOptions())
    scale = REGISTRY["alerts-ratio-scale-invariant"].run(ctx)
    assert scale.verdict == "pass", scale.render()
    assert scale.summary.startswith("4 ratio alerts decide the same at every traffic scale")
    rows = {row[0]: row for row in scale.evidence.rows}
    # The error-rate alert is a true ratio: at 1 error in 3 responses it fires at every scale.
    assert rows["HighErrorRate"][1:3] == ("a ratio", "FFFFFFF")
    # Absolute-rate alerts change with traffic, as they say they do: listed, not failed.
    assert rows["HighRateLimitHits"][1:3] == ("an absolute level", "....FFF")
    quoted = REGISTRY["alerts-thresholds-match-annotations"].run(ctx)
    assert quoted.verdict == "pass", quoted.render()
    assert quoted.summary == "7 of 10 alerts quote a threshold, each the expression's own"


def test_a_ratio_written_as_an_absolute_rate_and_a_misquoted_threshold_fail(tmp_path: Path) -> None:
    rules = tmp_path / "alerts.yml"
    rules.write_text(WRONG)
    ctx = VerifyContext(VerifyOptions(rules=[rules], run_dir=None))
    scale = REGISTRY["alerts-ratio-scale-invariant"].run(ctx)
    assert scale.verdict == "fail", scale.render()
    assert scale.summary == "1 alerts promise a ratio but decide by absolute traffic: HighErrorRate"
    rows = {row[0]: row for row in scale.evidence.rows}
    assert rows["HighErrorRate"][3] == "DEPENDS ON TRAFFIC: fires at x10, not at x1"
    assert rows["ErrorShareQuotedWrong"][3] == "same decision at every scale"
    assert rows["RejectionsPerSecond"][1] == "an absolute level"
    assert ctx.artifacts["alert_intent_test"].exists()  # the promtool test a reviewer can rerun

    quoted = REGISTRY["alerts-thresholds-match-annotations"].run(ctx)
    assert quoted.verdict == "fail", quoted.render()
    assert quoted.summary == (
        "HighErrorRate says 'above 5 %' but compares > 5; ErrorShareQuotedWrong says 'threshold 5%' but compares > 0.1"
    )
