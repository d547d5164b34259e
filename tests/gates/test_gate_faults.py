"""`codesync-load gate` fails with a named cause for every twin fault.

Each fault breaks one thing the way real services break; the gate must exit 1 and name, as a
failed row of its verdict table, the check or gate whose symptom that fault produces, with
that symptom in its details. The runs use the quick gate of test_gate_command.py (smoke at
half duration, ~7 s of load, held to gates/ci.toml with its checks), and only the gating
checks: every fault shows its symptom within that load, and the same arguments pass on the
healthy twin (test_gate_command.py, two trials; tests/test_demo.py runs the full
`--profile ci` gate). The slow-route fault has its own test in test_gate_command.py.

The seven gates run two at a time (one module fixture, each gate its own stack on its own
ports and its own --out directory): a gate mostly waits (stack start, paced load, scrapes), so two share the machine's
cores without either one's verdict changing; each test then judges its own fault's run.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.gates.test_gate_command import ARGS, gate, pytestmark  # noqa: F401  (the same skip rule)
from verify.checks import REGISTRY

# fault -> (the check or gate that names its symptom, a phrase of that symptom in its details)
NAMED_CAUSE = {
    "http-counter-frozen": ("counters-match-ledger", "codesync_http_requests_total"),
    "ws-gauge-leak": ("gauges-return-to-baseline", "codesync_websocket_connections_active"),
    "sessions-gauge-leak": ("gauges-return-to-baseline", "codesync_sessions_active"),
    "label-drift": ("metrics-labels-match-contract", "route,status_code"),
    "error-burst=0.2": ("gate: error_rate < 1%", "error_rate = "),
    "yjs-drop-persist": ("no-yjs-edit-lost", "Yjs edits lost in storage"),
    "rate-limit-uncounted": ("rate-limit-counted-files", "rate-limit rejections not counted"),
}
INTEGRITY = sorted(name for name, chk in REGISTRY.items() if chk.group == "integrity")
TARGET_FAILED = ("cannot judge ", "the target failed the check's set-up: ")
PARALLEL = 2


@pytest.fixture(scope="module")
def gate_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[int | None, list[str]] | str]]:
    """fault -> (exit code, output lines) of its gate, or why the run itself broke."""

    def one(fault: str) -> tuple[str, tuple[int | None, list[str]] | str]:
        work = tmp_path_factory.mktemp(fault.split("=")[0])
        try:
            return fault, gate(work, *ARGS, "--gating-only", "--fault", fault, "--out", str(work / "gate"), timeout=600)
        except AssertionError as err:  # the gate overran (stopped by PID): that fault's test fails
            return fault, str(err)

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        yield dict(pool.map(one, sorted(NAMED_CAUSE)))


def details(lines: list[str], name: str) -> str:
    """The gate's detail block of a failed check or gate (from `name: FAIL:` to the next one)."""
    start = next((i for i, line in enumerate(lines) if line.startswith(f"{name}: FAIL: ")), None)
    if start is None:
        return ""
    end = next((i for i in range(start + 1, len(lines)) if lines[i][:1] not in ("", " ")), len(lines))
    return "\n".join(lines[start:end])


@pytest.mark.parametrize("fault", sorted(NAMED_CAUSE))
def test_each_fault_fails_the_ci_gate_in_the_check_named_for_its_symptom(gate_runs: dict, fault: str) -> None:
    run = gate_runs[fault]
    assert not isinstance(run, str), run
    code, lines = run
    cause, symptom = NAMED_CAUSE[fault]
    assert code == 1, "\n".join(lines[-40:])
    failed_rows = [line for line in lines if line.startswith(cause) and " FAIL " in line]
    assert failed_rows, f"{cause} is not a failed row:\n" + "\n".join(lines[-60:])
    assert symptom in details(lines, cause), "\n".join(lines[-60:])
    assert lines[-1].startswith("gate FAIL on the embedded twin: "), lines[-1]
    if fault.startswith("error-burst"):
        # The injected 500s are the target failing: an integrity check they reach says so,
        # it does not claim the symptom it tests for (CSRF not enforced, a limit not counted).
        rows = {line.split()[0]: line for line in lines if line.split()[:1] and line.split()[0] in INTEGRITY}
        assert set(rows) == set(INTEGRITY), "\n".join(lines[-60:])
        for name, row in rows.items():
            verdict, summary = row[len(name) :].split(maxsplit=1)
            assert verdict == "PASS" or summary.startswith(TARGET_FAILED), row
