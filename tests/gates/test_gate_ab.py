"""`codesync-load gate --reference`: concurrent A/B pairs catch a slow route (small numbers for CI).

Five pairs of a short autosave-heavy load (reference and candidate started together), the
candidate twin with `slow-route=50` (several times the route's healthy ~10 ms median on this
machine), must fail exactly the comparison of the route's median: with 5 pairs the exact
one-sided signed-rank p is 1/32 only when the candidate is slower in every pair.
The five-run check with a +30 % fault is benchmarks/gate_repeatability.py. Real stacks, real
Locust child processes, every process stopped by PID (the `gate` helper of test_gate_command).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.gates.test_gate_command import gate, pytestmark  # noqa: F401  (the same skip rule)

PROFILE = """name = "ab_small"
description = "Two editors autosaving every 0.4 s for ~5 s"
long = false
crosses_rate_limits = false

[users]
editor = 1

[sessions]
participants = 2

[think]
keystroke = 0.05
burst_chars = [3, 6]
between_bursts = [0.5, 1.5]
cursor_probability = 0.0
chat_probability = 0.0
autosave_interval = 0.4

[[stages]]
name = "steady"
duration = 5
users = 2
spawn_rate = 2
"""
GATES = """gates = ["failures == 0", "error_rate < 1%"]
checks = []

[baseline]
alpha = 0.05
min_effect = 1.15

[baseline.metrics]
autosave_put_median = "median(autosave_put)"
"""


def test_interleaved_reference_catches_a_slow_route(tmp_path: Path) -> None:
    (tmp_path / "ab_small.toml").write_text(PROFILE)
    (tmp_path / "ab.toml").write_text(GATES)
    out = tmp_path / "gate"
    code, lines = gate(
        tmp_path,
        *("--profile", str(tmp_path / "ab_small.toml"), "--gates", str(tmp_path / "ab.toml"), "--gating-only"),
        *("--bcrypt-rounds", "4", "--trials", "5", "--reference", "--fault", "slow-route=50", "--out", str(out)),
        timeout=170,
    )
    assert code == 1, "\n".join(lines[-40:])
    steps = [line for line in lines if line.startswith(("pair ", "trial "))]
    assert steps == [  # every load first, in pairs; the candidate's checks and gates after the last pair
        *(f"pair {n}/5: reference and candidate loads at once ..." for n in range(1, 6)),
        *(f"trial {n}/5: checks and gates ..." for n in range(1, 6)),
    ]
    doc = json.loads((out / "gate.json").read_text())
    assert doc["comparison"] == "reference" and doc["faults"] == ["slow-route=50"]
    assert doc["reference"]["faults"] == [] and len(doc["reference"]["trials"]) == 5
    reference = [v["autosave_put_median"] for v in doc["reference"]["values"]]
    candidate = [v["autosave_put_median"] for v in doc["values"]]
    assert max(reference) < 0.050 < min(candidate)  # the fault adds 50 ms to every PUT
    [cmp] = doc["baseline"]
    assert cmp["name"] == "baseline: autosave_put_median" and cmp["verdict"] == "fail"
    assert "Wilcoxon signed-rank W+=15 p=0.0312 (exact, one-sided), 5 pairs" in cmp["summary"]
    assert [g["verdict"] for g in doc["gates"]] == ["pass", "pass"]  # slow, not broken
    printed = [line for line in lines if line.startswith("baseline: autosave_put_median: FAIL ")]
    assert len(printed) == 1 and "regressed: median of paired ratios " in printed[0] and "95% CI" in printed[0]
    assert lines[-1].startswith("gate FAIL: 1 failed (baseline: autosave_put_median: ")
    root = ET.parse(out / "junit.xml").getroot()
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert sorted(suites) == ["baseline", "gates", "reference", *(f"verify trial-{n}" for n in range(1, 6))]
    assert suites["reference"].get("tests") == "5" and suites["reference"].get("failures") == "0"
    case = suites["baseline"].find("testcase[@name='baseline: autosave_put_median']")
    assert case is not None and case.find("failure") is not None
