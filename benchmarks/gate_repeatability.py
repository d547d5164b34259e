"""Is the gate repeatable, and does it catch a +30 % latency fault on one route? (a benchmark, not a test)

    $ .venv/bin/python benchmarks/gate_repeatability.py                  # 1 baseline + 5 healthy + 5 faulty gates
    $ .venv/bin/python benchmarks/gate_repeatability.py --runs 3 --trials 3 --duration-scale 0.5

The load is a profile of this benchmark's own (written to OUT/gate_bench.toml unless
--profile is given): four editors typing and autosaving every 0.5 s, so that each trial holds
~80 autosave PUTs; the smoke profile's 2-5 PUTs a trial make a per-trial mean that the
machine's noise swamps (measured: a ratio CI of [0.2, 1.8] between healthy runs).

Steps, all through `codesync-load gate` as a child process (the way CI runs it):
1. a baseline: one gate run of --trials N on the healthy twin, saved with --save-baseline;
2. the same commit, healthy, --runs times against that baseline: every verdict should be the
   same (PASS), since the same code must not fail at random;
3. the slow-route fault sized to +30 % of the autosave route's baseline latency (the median
   of the baseline trials' `autosave_put_median`), --runs times against the baseline: each
   run should exit 1 with the baseline comparison of `autosave_put_median` failed.
It prints every run's verdict with the comparison (ratio of medians, its bootstrap CI, the
Mann-Whitney p) and the counts "identical x/N" and "caught x/N". Output under --out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from codesync_load.processes import ManagedProcess  # noqa: E402

ROUTE_METRIC = "autosave_put_median"
PROFILE = """# written by benchmarks/gate_repeatability.py: editors that autosave often
name = "gate_bench"
description = "Four editors typing and autosaving every 0.5 s: ~80 autosave PUTs per trial"
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
cursor_probability = 0.2
chat_probability = 0.5
autosave_interval = 0.5

[[stages]]
name = "ramp"
duration = 2
users = 4
spawn_rate = 4

[[stages]]
name = "steady"
duration = 10
users = 4
spawn_rate = 4
"""


def run_gate(out: Path, common: list[str], extra: list[str], timeout: float) -> dict:
    """One `codesync-load gate` child; returns {"code", "doc" (gate.json or {}), "last" (last line)}."""
    log = out.with_suffix(".log")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("CODESYNC_DURATION_SCALE", None)
    argv = [sys.executable, "-m", "codesync_load.cli", "gate", *common, *extra, "--out", str(out)]
    proc = ManagedProcess.start(argv, name="gate", log_path=log, cwd=REPO, env=env)
    try:
        deadline = time.monotonic() + timeout
        while proc.alive() and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        code = proc.stop(grace=30)
    lines = log.read_text(errors="replace").splitlines()
    doc = json.loads((out / "gate.json").read_text()) if (out / "gate.json").exists() else {}
    return {"code": code, "doc": doc, "last": lines[-1] if lines else "(no output)"}


def comparison(doc: dict) -> str:
    """The route's comparisons (mean and median), e.g. "mean PASS ratio 1.02 [...]; median FAIL ..."."""
    parts = []
    for item in doc.get("baseline") or []:
        if item["name"].startswith("baseline: autosave_put_"):
            parts.append(
                f"{item['name'].removeprefix('baseline: autosave_put_')} {item['verdict'].upper()} {item['measured']}"
            )
    return "; ".join(parts) or "no comparison"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="healthy runs and faulty runs (default 5 each)")
    parser.add_argument("--trials", type=int, default=5, help="load trials per gate run (default 5)")
    parser.add_argument("--profile", default=None, help="load profile (default: this benchmark's own, see above)")
    parser.add_argument("--gates", type=Path, default=REPO / "gates" / "ci.toml")
    parser.add_argument("--duration-scale", type=float, default=1.0)
    parser.add_argument("--shift", type=float, default=0.30, help="latency added to the route, as a fraction")
    stamp = time.strftime("bench-gate-%Y%m%dT%H%M%S")
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "runs" / stamp)
    parser.add_argument("--timeout", type=float, default=900.0, help="limit per gate run in seconds")
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    if args.profile is None:
        args.profile = str(args.out / "gate_bench.toml")
        Path(args.profile).write_text(PROFILE)
    common = [
        "--profile",
        args.profile,
        "--gates",
        str(args.gates),
        "--trials",
        str(args.trials),
        "--bcrypt-rounds",
        "4",
        "--duration-scale",
        repr(args.duration_scale),
    ]
    started = time.monotonic()
    base_dir = args.out / "baseline"
    print(f"baseline: {args.trials} healthy trials ...", flush=True)
    base = run_gate(args.out / "baseline-gate", common, ["--save-baseline", str(base_dir)], args.timeout)
    saved_path = base_dir / "baseline.json"
    if not saved_path.exists():
        print(f"the baseline run saved nothing (exit {base['code']}): {base['last']}")
        return 2
    saved = json.loads(saved_path.read_text())["metrics"]
    route_mean = statistics.median(saved[ROUTE_METRIC])
    fault_ms = round(route_mean * args.shift * 1000.0, 3)
    print(
        f"baseline {ROUTE_METRIC}: {[round(v * 1000, 2) for v in saved[ROUTE_METRIC]]} ms; median "
        f"{route_mean * 1000:.2f} ms -> fault slow-route={fault_ms} ms (+{args.shift:.0%})",
        flush=True,
    )

    rows = []
    for kind, extra in (("healthy", []), ("fault", ["--fault", f"slow-route={fault_ms}"])):
        for number in range(1, args.runs + 1):
            result = run_gate(
                args.out / f"{kind}-{number}", common, ["--baseline", str(base_dir), *extra], args.timeout
            )
            verdict = {0: "PASS", 1: "FAIL", 2: "ERROR"}.get(result["code"], f"exit {result['code']}")
            rows.append((kind, number, verdict, comparison(result["doc"]), result["last"]))
            print(f"{kind:7} {number}: {verdict:5} {rows[-1][3]}", flush=True)

    healthy = [r for r in rows if r[0] == "healthy"]
    faulty = [r for r in rows if r[0] == "fault"]
    counts = {v: sum(1 for r in healthy if r[2] == v) for v in {r[2] for r in healthy}}
    common = max(counts, key=lambda v: counts[v]) if counts else "-"
    identical = counts.get(common, 0)
    caught = sum(1 for r in faulty if r[2] == "FAIL" and " FAIL " in f" {r[3]}")
    print()
    print(f"{'run':10} {'verdict':7} autosave route comparisons")
    for kind, number, verdict, cmp, _last in rows:
        print(f"{kind + '-' + str(number):10} {verdict:7} {cmp}")
    print()
    print(f"healthy verdicts identical: {identical}/{len(healthy)} (most common: {common})")
    print(
        f"+{args.shift:.0%} route latency (slow-route={fault_ms} ms) caught by the baseline comparison: "
        f"{caught}/{len(faulty)}"
    )
    print(f"{time.monotonic() - started:.0f} s; runs under {args.out}")
    return 0 if identical == len(healthy) and caught == len(faulty) else 1


if __name__ == "__main__":
    sys.exit(main())
