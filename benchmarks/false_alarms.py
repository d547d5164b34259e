"""False-alarm budget: every check in every mode against the healthy twin, N times (a benchmark, not a test).

    $ .venv/bin/python benchmarks/false_alarms.py --budget 3600     # 5 runs, stops starting runs after 1 h
    $ .venv/bin/python benchmarks/false_alarms.py --runs 1 --no-alert-scenarios             # one quick pass

A healthy twin in its default, contract-faithful behaviour has no defect for any check to find,
so every verdict other than PASS (or a SKIP whose reason is a missing input, e.g. no Grafana)
is a false alarm. Each run is, as CI runs them, child processes of the CLI:

1. `codesync-load gate --profile ci` (a local stack, the ci load, then every check against it:
   the gate file's checks and the others as informational): static (rules, dashboard, promtool,
   alert semantics), reconciliation (counters, gauges, lower bounds, panels), live (integrity,
   alert delivery, gauges against the source of truth) verdicts, read from OUT/run-N/gate.json;
2. unless --no-alert-scenarios, `codesync-load verify OUT/run-N/trial-1 --alert-scenarios
   --check 'alert-fires-*' --check alerts-silent-when-healthy`: the live alert scenarios, each
   on local stacks of its own (RUN/verify/results.json).

It prints, per check, its mode and the count of each verdict over the runs ("5/5 pass"), then
the checks that did not pass every time with the summaries they gave; exit 0 when every check
passed (or skipped) in every run, 1 otherwise. Results: OUT/false_alarms.json; the figures that
were measured go in benchmarks/RESULTS.md with the machine's conditions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from codesync_load.cli import _terminate  # noqa: E402
from codesync_load.processes import ManagedProcess  # noqa: E402

# Group of a check -> the mode it runs in (the names).
MODES = {
    "static": "static",
    "alerts": "static",
    "dashboard": "reconciliation",
    "reconcile": "reconciliation",
    "integrity": "live",
    "delivery": "live",
    "live-gauges": "live",
    "live-alerts": "alert scenarios",
}


def cli(argv: list[str], log: Path, timeout: float) -> int:
    """`codesync-load ARGV` as a child process (stopped by PID on timeout or Ctrl-C); its exit code."""
    proc = ManagedProcess.start([sys.executable, "-m", "codesync_load.cli", *argv], name="cli", log_path=log, cwd=REPO)
    try:
        deadline = time.monotonic() + timeout
        while proc.alive() and time.monotonic() < deadline:
            time.sleep(0.5)
        timed_out = proc.alive()
        code = proc.stop(grace=30.0)
        return 124 if timed_out else int(code or 0)
    except BaseException:
        proc.stop(grace=10.0)
        raise


def run_verdicts(run: Path, scenarios: bool) -> tuple[list[dict], list[str]]:
    """The verdicts of one run read from its files (gate.json, and the alert scenarios' result
    set), and what could not be read. With the scenarios asked for, the gate's own rows for
    them (skipped: "not asked for") are left out: the scenario set holds their verdicts."""
    problems = []
    try:
        doc = json.loads((run / "gate.json").read_text())
    except (OSError, ValueError):
        return [], [f"{run.name}: no readable gate.json (see {run.name}-gate.log)"]
    items = [*doc.get("checks", []), *doc.get("info", [])]
    if scenarios:
        items = [i for i in items if _group(i["name"]) != "live-alerts"]
        sets = []
        for path in sorted((run / "trial-1" / "verify" / "sets").glob("*/results.json")):
            with contextlib.suppress(OSError, ValueError):
                result = json.loads(path.read_text())
                if (result.get("options") or {}).get("alert_scenarios"):
                    sets.append(result)
        if len(sets) == 1:
            items += sets[0].get("checks", [])
        else:
            problems.append(f"{run.name}: {len(sets)} alert-scenario result sets (see {run.name}-scenarios.log)")
    return items, problems


def _group(name: str) -> str:
    from verify.checks import REGISTRY

    return REGISTRY[name].group if name in REGISTRY else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="healthy runs (default 5)")
    parser.add_argument("--duration-scale", type=float, default=None, help="passed to the gate")
    parser.add_argument("--no-alert-scenarios", action="store_true", help="skip the slow live alert scenarios")
    parser.add_argument("--timeout", type=float, default=900.0, help="limit per child command in seconds")
    parser.add_argument(
        "--budget",
        type=float,
        default=5400.0,
        help="limit of the whole benchmark in seconds (default 5400): no run starts past it, a child is cut at it",
    )
    parser.add_argument("--summarize", action="store_true", help="run nothing: the table of the runs in --out")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "runs" / f"{stamp}-false-alarms")
    args = parser.parse_args()
    if args.runs < 1:
        print("--runs must be >= 1")
        return 2
    # A `timeout` or CI cancel (SIGTERM/SIGHUP) must stop the child CLI, which stops its stack:
    # the children live in sessions of their own, out of reach of a signal sent to ours.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    ends = time.monotonic() + args.budget
    if args.summarize:
        return summarize(args.out, args.runs, not args.no_alert_scenarios, os.getloadavg(), [])
    args.out.mkdir(parents=True, exist_ok=True)
    # A state directory of its own: a stack another user recorded (`stack up`) must not become
    # the target the children judge; with none recorded, gate --twin and verify use the twin.
    os.environ["CODESYNC_STATE_DIR"] = str(args.out / "state")
    load = os.getloadavg()
    print(f"false-alarm budget: {args.runs} run(s) on the healthy twin; load average {load[0]:.1f}", flush=True)
    failed_commands: list[str] = []
    for number in range(1, args.runs + 1):
        if time.monotonic() >= ends:
            failed_commands.append(f"run {number}: not started, the --budget of {args.budget:.0f} s was spent")
            continue
        out = args.out / f"run-{number}"
        argv = ["gate", "--twin", "--profile", "ci", "--bcrypt-rounds", "4", "--out", str(out)]
        if args.duration_scale is not None:
            argv += ["--duration-scale", repr(args.duration_scale)]
        started = time.monotonic()
        code = cli(argv, args.out / f"run-{number}-gate.log", min(args.timeout, ends - time.monotonic()))
        line = f"run {number}: gate exit {code} in {time.monotonic() - started:.0f} s"
        if not (out / "gate.json").exists():
            print(line, flush=True)
            continue
        if not args.no_alert_scenarios:
            trial = out / "trial-1"
            argv = ["verify", str(trial), "--alert-scenarios", "--check", "alert-fires-*"]
            argv += ["--check", "alerts-silent-when-healthy"]
            limit = max(1.0, min(args.timeout, ends - time.monotonic()))
            code = cli(argv, args.out / f"run-{number}-scenarios.log", limit)
            line += f"; alert scenarios exit {code}"
        print(line, flush=True)
    return summarize(args.out, args.runs, not args.no_alert_scenarios, load, failed_commands)


def summarize(out: Path, runs: int, scenarios: bool, load: tuple[float, ...], failed_commands: list[str]) -> int:
    """The per-check table over runs 1..`runs` read from `out` (also alone: --summarize)."""
    from verify.checks import REGISTRY

    verdicts: dict[str, list[tuple[str, str]]] = defaultdict(list)  # check -> [(verdict, summary)]
    for number in range(1, runs + 1):
        if any(problem.startswith(f"run {number}: not started") for problem in failed_commands):
            continue
        items, problems = run_verdicts(out / f"run-{number}", scenarios)
        failed_commands += problems
        for item in items:
            verdicts[item["name"]].append((item["verdict"], item.get("summary", "")))

    rows = []
    for name, chk in sorted(REGISTRY.items(), key=lambda item: (MODES.get(item[1].group, item[1].group), item[0])):
        seen = verdicts.get(name, [])
        counts = {v: sum(1 for got, _s in seen if got == v) for v in ("pass", "fail", "skip", "error")}
        rows.append((MODES.get(chk.group, chk.group), name, counts, len(seen)))
    print()
    print(f"{'mode':16} {'check':46} passed  other verdicts")
    for mode, name, counts, total in rows:
        other = ", ".join(f"{counts[v]} {v}" for v in ("fail", "error", "skip") if counts[v]) or "-"
        shown = f"{counts['pass']}/{total}" if total else "not run"
        print(f"{mode:16} {name:46} {shown:7} {other}")
    alarms = {n: [s for v, s in verdicts[n] if v in ("fail", "error")] for n in verdicts}
    alarms = {n: s for n, s in alarms.items() if s}
    for name, summaries in sorted(alarms.items()):
        print(f"\nFALSE ALARM {name}:")
        for summary in summaries:
            print(f"  {summary[:300]}")
    for problem in failed_commands:
        print(f"\nCOULD NOT RUN: {problem}")
    (out / "false_alarms.json").write_text(
        json.dumps(
            {
                "runs": runs,
                "load_average_at_start": load,
                "alert_scenarios": scenarios,
                "checks": {n: {"mode": m, "verdicts": c, "seen": t} for m, n, c, t in rows},
                "false_alarms": alarms,
                "could_not_run": failed_commands,
            },
            indent=1,
        )
    )
    print(f"\n{len(alarms)} checks raised a false alarm; results {out / 'false_alarms.json'}")
    return 1 if alarms or failed_commands else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM/SIGHUP through _terminate: children stopped
        print(f"false-alarm budget: interrupted ({stop}); the running command was stopped", file=sys.stderr)
        sys.exit(128 + getattr(stop, "signum", 2))
