"""Every registered check as one test, its id the check's name.

$ pytest verify --run-dir reports/runs/R --prometheus-url http://127.0.0.1:9090 -k counters
"""

from __future__ import annotations

import pytest

from codesync_load.errors import HarnessError
from verify.checks import REGISTRY, selected
from verify.context import VerifyContext

CHECK_NAMES = [c.name for c in selected()]


@pytest.mark.parametrize("check_name", CHECK_NAMES, ids=CHECK_NAMES)
def test_check(check_name: str, verify_context: VerifyContext) -> None:
    try:
        result = REGISTRY[check_name].run(verify_context)
    except HarnessError as err:
        pytest.fail(f"cannot run {check_name}: {err}", pytrace=False)
    if result.verdict == "skip":
        pytest.skip(f"{check_name}: {result.summary}")
    if result.verdict != "pass":
        pytest.fail(result.render(), pytrace=False)
