"""`codesync-load gate --profile ci` fails with a named cause for every twin fault.

Each fault breaks one thing the way real services break; the gate must exit 1 and name, as a
failed row of its verdict table, the check or gate whose symptom that fault produces (and the
healthy twin passes: tests/test_demo.py runs the same gate without a fault). The slow-route
fault has its own test in test_gate_command.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gates.test_gate_command import gate, pytestmark  # noqa: F401  (the same skip rule)

# fault -> the check or gate that names its symptom
NAMED_CAUSE = {
    "http-counter-frozen": "counters-match-ledger",
    "ws-gauge-leak": "gauges-return-to-baseline",
    "sessions-gauge-leak": "gauges-return-to-baseline",
    "label-drift": "metrics-labels-match-contract",
    "error-burst=0.2": "gate: error_rate < 1%",
    "yjs-drop-persist": "no-yjs-edit-lost",
    "rate-limit-uncounted": "rate-limit-counted-files",
}


@pytest.mark.parametrize("fault", sorted(NAMED_CAUSE))
def test_each_fault_fails_the_ci_gate_in_the_check_named_for_its_symptom(tmp_path: Path, fault: str) -> None:
    code, lines = gate(tmp_path, "--profile", "ci", "--bcrypt-rounds", "4", "--fault", fault, timeout=300)
    cause = NAMED_CAUSE[fault]
    assert code == 1, "\n".join(lines[-40:])
    failed_rows = [line for line in lines if line.startswith(cause) and " FAIL " in line]
    assert failed_rows, f"{cause} is not a failed row:\n" + "\n".join(lines[-60:])
    assert lines[-1].startswith("gate FAIL: "), lines[-1]
