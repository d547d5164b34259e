"""Is the gate repeatable, and does it catch a +30 % latency fault on one route? (a benchmark, not a test)

    $ flock /work/briefs/bench.lock .venv/bin/python benchmarks/gate_repeatability.py       # 5 healthy + 5 faulty
    $ .venv/bin/python benchmarks/gate_repeatability.py --runs 2                             # a calibration pass

Every gate run is a concurrent A/B comparison (`codesync-load gate --reference`): a reference
twin without faults and the candidate twin each get --trials trials, trial i of both started
at the same moment, and the gate file's [baseline] rule compares the pairs' per-trial
`autosave_put_median` (the file-content PUT's median client latency from the ledger's raw
samples) with the signed-rank test. Results and the settings of the recorded run:
benchmarks/GATE_REPEATABILITY.md.

The load is a profile of this benchmark's own (written to OUT/gate_bench.toml unless
--profile is given): four editors typing and autosaving every 0.5 s, ~45 autosave PUTs a
trial at --duration-scale 0.5; the ci profile's ~12 PUTs a trial give a noisier median.

Steps, all through `codesync-load gate` as a child process (the way CI runs it):
1. the same commit, healthy on both sides, --runs times: every verdict should be the same
   (PASS), since the same code must not fail at random;
2. the slow-route fault on the candidate only, sized to +30 % (--shift) of the route's median
   over every reference trial of step 1 (measured before any faulty run), --runs times: each
   run should exit 1 with the comparison of `autosave_put_median` failed.
The decision rule (alpha, min_effect) comes from the gate file and is not touched here: fix
it first, then run. It prints every run's verdict with the comparison (ratio of medians, its
bootstrap CI, the signed-rank W+ and p), the counts "identical x/N" and "caught x/N", and the
healthy runs' ratios (the A/B noise a min_effect must stay above). Output under --out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
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
description = "Four editors typing and autosaving every 0.5 s: ~90 autosave PUTs per full-length trial"
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
_SENTENCE = re.compile(
    r"(?:ratio of medians|median of paired ratios) (?P<ratio>[0-9.]+) "
    r"\[95% CI (?P<low>[0-9.]+) \.\. (?P<high>[0-9.]+)\], "
    r"(?:Mann-Whitney U|Wilcoxon signed-rank W\+)=(?P<u>[0-9.]+) p=(?P<p>[0-9.]+)"
)


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


def route_comparison(doc: dict) -> dict | None:
    """The route's comparison: verdict, ratio, CI, U, p, both groups' values (ms); None if absent."""
    for item in doc.get("baseline") or []:
        if item["name"] == f"baseline: {ROUTE_METRIC}":
            match = _SENTENCE.search(item["summary"])
            ref = [v[ROUTE_METRIC] for v in (doc.get("reference") or {}).get("values", [])]
            cand = [v[ROUTE_METRIC] for v in doc.get("values", [])]
            return {
                "verdict": item["verdict"].upper(),
                "ratio": float(match["ratio"]) if match else float("nan"),
                "ci": (float(match["low"]), float(match["high"])) if match else (float("nan"),) * 2,
                "u": float(match["u"]) if match else float("nan"),
                "p": float(match["p"]) if match else float("nan"),
                "reference_ms": [round(v * 1000, 2) for v in ref if v is not None],
                "candidate_ms": [round(v * 1000, 2) for v in cand if v is not None],
            }
    return None


def show(cmp: dict | None) -> str:
    if cmp is None:
        return "no comparison"
    low, high = cmp["ci"]
    return (
        f"{cmp['verdict']:4} ratio {cmp['ratio']:.3f} [95% CI {low:.3f} .. {high:.3f}] W+={cmp['u']:g} p={cmp['p']:.4f}"
    )


def failed_rows(doc: dict) -> list[str]:
    """Names of everything that failed in a gate run (checks, gates, comparisons)."""
    rows = [*doc.get("checks", []), *doc.get("gates", []), *doc.get("baseline", [])]
    return [r["name"] for r in rows if r.get("verdict") in ("fail", "error")]


def machine_line() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 1024 / 1024:.1f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    load = ", load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    return f"{os.cpu_count()} cores ({cpu}){mem}, Python {platform.python_version()}{load}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="healthy runs and faulty runs (default 5 each)")
    parser.add_argument("--trials", type=int, default=9, help="pairs of trials per gate run (default 9)")
    parser.add_argument("--profile", default=None, help="load profile (default: this benchmark's own, see above)")
    parser.add_argument("--gates", type=Path, default=REPO / "gates" / "ci.toml")
    parser.add_argument("--duration-scale", type=float, default=0.5)
    parser.add_argument("--shift", type=float, default=0.30, help="latency added to the route, as a fraction")
    stamp = time.strftime("bench-gate-%Y%m%dT%H%M%S")
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "runs" / stamp)
    parser.add_argument("--timeout", type=float, default=900.0, help="limit per gate run in seconds")
    args = parser.parse_args()
    if args.runs < 1 or args.trials < 5:
        print("--runs must be >= 1 and --trials >= 5 (with fewer pairs no signed-rank p reaches 0.05)")
        return 2

    args.out.mkdir(parents=True, exist_ok=True)
    if args.profile is None:
        args.profile = str(args.out / "gate_bench.toml")
        Path(args.profile).write_text(PROFILE)
    common = [
        *("--profile", args.profile, "--gates", str(args.gates), "--trials", str(args.trials)),
        *("--reference", "--gating-only", "--bcrypt-rounds", "4", "--duration-scale", repr(args.duration_scale)),
    ]
    from codesync_load.gates import load_gates

    rule = load_gates(args.gates).baseline
    print(f"machine: {machine_line()}")
    print(
        f"settings: {args.trials} pairs of reference + candidate trials per run, started together; profile "
        f"{Path(args.profile).name} x{args.duration_scale}; rule from {args.gates.name}: one-sided Wilcoxon "
        f"signed-rank on the pairs' log ratios, regression iff p <= {rule.alpha:g} and median paired ratio "
        f">= {rule.min_effect:g}",
        flush=True,
    )
    started = time.monotonic()
    rows: list[tuple[str, int, str, dict | None, list[str]]] = []

    def one(kind: str, number: int, extra: list[str]) -> None:
        result = run_gate(args.out / f"{kind}-{number}", common, extra, args.timeout)
        verdict = {0: "PASS", 1: "FAIL", 2: "ERROR"}.get(result["code"], f"exit {result['code']}")
        cmp = route_comparison(result["doc"])
        rows.append((kind, number, verdict, cmp, failed_rows(result["doc"])))
        ms = f" ref {cmp['reference_ms']} cand {cmp['candidate_ms']} ms" if cmp else f" ({result['last']})"
        print(f"{kind:7} {number}: gate {verdict:5} {show(cmp)}{ms}", flush=True)

    for number in range(1, args.runs + 1):
        one("healthy", number, [])
    reference_values = [v for r in rows if r[3] for v in r[3]["reference_ms"]]
    if not reference_values:
        print("the healthy runs measured no autosave route latency; see their logs under", args.out)
        return 2
    route_ms = statistics.median(reference_values)
    fault_ms = round(route_ms * args.shift, 3)
    print(
        f"route median over the healthy runs' {len(reference_values)} reference trials: {route_ms:.2f} ms "
        f"-> fault slow-route={fault_ms} ms (+{args.shift:.0%})",
        flush=True,
    )
    for number in range(1, args.runs + 1):
        one("fault", number, ["--fault", f"slow-route={fault_ms}"])

    healthy = [r for r in rows if r[0] == "healthy"]
    faulty = [r for r in rows if r[0] == "fault"]
    counts: dict[str, int] = {}
    for r in healthy:
        counts[r[2]] = counts.get(r[2], 0) + 1
    most = max(counts, key=lambda v: counts[v])
    caught = sum(1 for r in faulty if r[2] == "FAIL" and r[3] is not None and r[3]["verdict"] == "FAIL")
    print()
    print(f"{'run':10} {'gate':5} autosave route: candidate vs reference, paired trials")
    for kind, number, verdict, cmp, failed in rows:
        others = [f for f in failed if f != f"baseline: {ROUTE_METRIC}"]
        extra = f"  other failures: {', '.join(others)}" if others else ""
        print(f"{kind + '-' + str(number):10} {verdict:5} {show(cmp)}{extra}")
    print()
    ratios = sorted(r[3]["ratio"] for r in healthy if r[3])
    fault_ratios = sorted(r[3]["ratio"] for r in faulty if r[3])
    print(f"healthy median paired ratios: {', '.join(f'{x:.3f}' for x in ratios)}")
    print(f"faulty median paired ratios:  {', '.join(f'{x:.3f}' for x in fault_ratios)}")
    print(
        f"healthy verdicts identical: {counts[most]}/{len(healthy)} (all {most})"
        if counts[most] == len(healthy)
        else f"healthy verdicts identical: {counts[most]}/{len(healthy)} (most common {most}; {counts})"
    )
    print(
        f"+{args.shift:.0%} route latency (slow-route={fault_ms} ms) caught by the comparison: {caught}/{len(faulty)}"
    )
    print(f"{time.monotonic() - started:.0f} s; runs under {args.out}")
    return 0 if counts[most] == len(healthy) and most == "PASS" and caught == len(faulty) else 1


if __name__ == "__main__":
    sys.exit(main())
