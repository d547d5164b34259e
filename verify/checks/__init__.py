"""Every check of the verification suite, registered by importing its module.

>>> from verify.checks import REGISTRY, selected
>>> sorted(REGISTRY)[:3]
['alerts-severities-routed', 'counters-match-ledger', 'dashboard-panels-job-scoped']
"""

from verify.checks import (  # noqa: F401  (registration)
    alert_intent,
    dashboard,
    delivery,
    eager,
    errors_tracked,
    gauges_truth,
    integrity,
    live_alerts,
    promtool,
    reconcile,
    static,
    uptime,
)
from verify.checks.base import REGISTRY, Check, CheckResult, Evidence, MissingInput, check, run_checks, selected

__all__ = ["REGISTRY", "Check", "CheckResult", "Evidence", "MissingInput", "check", "run_checks", "selected"]
