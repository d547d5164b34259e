"""`codesync-load gate`: stack, load, verification and gates in one command, with a CI exit code.

    $ codesync-load gate --profile ci                          # healthy twin: exit 0
    $ codesync-load gate --profile ci --fault slow-route=400   # exit 1, the failed gate named
    $ codesync-load gate --profile ci --trials 7 --reference --fault slow-route=12   # A/B on one machine
    $ codesync-load gate --profile ci --trials 3 --baseline gates/baselines/ci --junit junit.xml
    ...
    gate FAIL: 1 gate failed (gate: p95(http) < 250ms); report reports/runs/...-gate-ci/report/report.html

Exit 0 = every gate, check and baseline comparison passed; 1 = one of them failed; 2 = the
harness itself could not run (bad gate file, unknown profile, stack that would not start, a
check that crashed). The last line always names the verdict and the report.

Target (codesync_load/target.py): --api-url/--yjs-url, else the stack `codesync-load stack
up` recorded (e.g. monitoring around your CodeSync), else (only then, or with --twin) the
embedded twin; the first line and the verdict line name it. Against a given or recorded
target the load and the checks run there, with its Prometheus, and the monitoring files its
stack runs; nothing is started.

Steps: parse the gate file (gates/<profile>.toml unless --gates) and the profile before
anything starts; start a local stack unless a target is given (the twin with each --fault,
Prometheus scraping every --scrape-interval); then per trial: the load run (the `run` command's own function, into
OUT/trial-N), the verify checks the gate file selects (the `verify` command's checks and
writers), the gates over that trial's ledger and Prometheus window, and the values of the
baseline metrics (OUT/trial-N/gate/values.json); stop the stack; compare with --baseline;
write OUT/gate.json, the JUnit XML (default OUT/junit.xml) and OUT/report/report.{html,md,json}.

With --reference a second local stack runs the same twin without the candidate's --fault
(with --reference-fault instead, if given); each reference trial's load (OUT/reference-N:
the load and the baseline metrics only) starts at the same moment as candidate trial N's,
and the candidate's checks and gates run after the last pair, so during every load both
twins see the same traffic and the same machine. The pairs are then compared by the rule
stated in codesync_load/baseline.py (paired: Wilcoxon signed-rank). This is the comparison
for shared, noisy machines; a stored --baseline suits a quiet, dedicated runner (the two are
exclusive).
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
import traceback
from pathlib import Path
from typing import Any

from codesync_load.errors import HarnessError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gate",
        help="run stack + load + verification + gates in one command; exit 0 pass, 1 fail, 2 harness error",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--profile", default="ci", help="load profile (scenarios/profiles/<name>.toml)")
    parser.add_argument("--fault", action="append", default=[], metavar="NAME[=PARAM]", help="twin fault (repeatable)")
    parser.add_argument(
        "--backend",
        choices=("local", "compose"),
        default="local",
        help="local processes (default) or containers (docker-compose.test.yml; local images on podman)",
    )
    parser.add_argument("--gates", type=Path, default=None, help="gate file (default gates/<profile>.toml)")
    parser.add_argument("--baseline", type=Path, default=None, help="baseline to compare with (DIR or baseline.json)")
    parser.add_argument("--save-baseline", type=Path, default=None, metavar="DIR", help="save these trials as one")
    parser.add_argument("--trials", type=int, default=1, help="load runs on the same stack (default 1)")
    parser.add_argument(
        "--reference",
        action="store_true",
        help="pair each trial with one on a reference twin (no --fault), started together; compare the pairs",
    )
    parser.add_argument(
        "--reference-fault",
        action="append",
        default=[],
        metavar="NAME[=PARAM]",
        help="a fault of the reference twin (repeatable; implies --reference)",
    )
    parser.add_argument("--junit", type=Path, default=None, help="JUnit XML path (default OUT/junit.xml)")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default reports/runs/<time>-gate-P)")
    parser.add_argument("--duration-scale", type=float, default=None, help="multiply stage durations (CI: 0.05)")
    parser.add_argument("--max-users", type=int, default=0, help="cap every stage's users (0 = no cap)")
    parser.add_argument("--bcrypt-rounds", type=int, default=12, help="bcrypt cost of the twin (4 for quick runs)")
    parser.add_argument(
        "--scrape-interval",
        default=None,
        help="scrape interval of the Prometheus this command starts (default 1s); a target's own "
        "Prometheus keeps its configured interval",
    )
    parser.add_argument(
        "--check",
        action="append",
        default=None,
        metavar="GLOB",
        help="verify checks (overrides the gate file's `checks`)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="a gating check that applies but could not judge fails (CI and `demo` use this)",
    )
    parser.add_argument("--timeout", type=float, default=None, help="per-trial load limit in seconds")
    where = parser.add_argument_group(
        "target (default: the stack `codesync-load stack up` recorded, else the embedded twin)"
    )
    where.add_argument("--api-url", default=None, help="CodeSync API of the target (with --yjs-url)")
    where.add_argument("--yjs-url", default=None, help="its Yjs server")
    where.add_argument("--metrics-token", default=None, help="its /metrics bearer token")
    where.add_argument("--prometheus-url", default=None, help="a Prometheus scraping it (default: the recorded one)")
    where.add_argument("--alertmanager-url", default=None, help="its Alertmanager (default: the recorded one)")
    where.add_argument("--state-dir", default=None, help="state directory of the recorded stack")
    where.add_argument(
        "--twin", action="store_true", help="judge the embedded twin even when a stack is recorded (what demo does)"
    )
    parser.add_argument(
        "--gating-only",
        action="store_true",
        help="skip the checks the gate file does not select "
        "(by default they run too and are reported as informational, never gating)",
    )
    from verify.tracker import add_tracker_arguments

    add_tracker_arguments(parser)
    parser.set_defaults(func=run)


def _validate(args: argparse.Namespace) -> tuple[Any, Any, Path]:
    """(gate spec, profile, output dir): everything that can be wrong before anything starts."""
    from codesync_load.gates import default_gate_file, load_gates
    from scenarios.profiles import load_profile
    from twin.faults import parse_faults

    if args.trials < 1:
        raise HarnessError(f"--trials {args.trials} is less than 1; pass --trials 1 or more")
    if not 4 <= args.bcrypt_rounds <= 31:
        raise HarnessError(f"--bcrypt-rounds {args.bcrypt_rounds} is out of range; bcrypt takes 4-31")
    parse_faults(args.fault)
    parse_faults(args.reference_fault)
    args.reference = bool(args.reference or args.reference_fault)
    if args.reference and args.baseline is not None:
        raise HarnessError(
            "--reference and --baseline are two ways to get the baseline group; pass one "
            "(--reference on shared machines, --baseline on a quiet dedicated runner)"
        )
    profile = load_profile(args.profile, args.duration_scale)
    spec = load_gates(args.gates or default_gate_file(profile.name))
    if args.reference and not spec.baseline.metrics:
        raise HarnessError(f"--reference given but {spec.path} lists no [baseline] metrics; add some or drop it")
    if args.baseline is not None:
        from codesync_load.baseline import load_baseline

        saved = load_baseline(args.baseline)
        missing = [m.name for m in spec.baseline.metrics if m.name not in saved]
        if not spec.baseline.metrics:
            raise HarnessError(f"--baseline given but {spec.path} lists no [baseline] metrics; add some or drop it")
        if missing:
            raise HarnessError(f"baseline {args.baseline} has no values for {missing[0]!r}; save it again")
    args.target = _target(args)
    args.tracker = _tracker(args)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = (args.out or Path("reports") / "runs" / f"{stamp}-gate-{profile.name}").resolve()
    if (out / "gate.json").exists() or (out / "trial-1").exists():
        raise HarnessError(f"{out} already holds a gate run; pass a new --out")
    return spec, profile, out


def _tracker(args: argparse.Namespace) -> Any:
    """The error tracker of an outside target: --tracker-* when given, else the recorded
    stack's (None here for a stack this gate starts: it brings its own Bugsink)."""
    from verify.tracker import access_from_args

    if args.target is None and args.tracker_url:
        raise HarnessError(
            "--tracker-url names the Bugsink your CodeSync reports to, but this gate starts its own stack "
            "(the embedded twin or --backend compose), whose twin reports to the stack's own Bugsink; "
            "drop --tracker-url, or pass --api-url/--yjs-url of your CodeSync"
        )
    return access_from_args(args, args.target.tracker if args.target is not None else None)


def _target(args: argparse.Namespace) -> Any:
    """The target the gate judges (codesync_load.target), or None for the embedded twin."""
    from codesync_load.target import resolve_target

    if args.twin or args.backend == "compose":  # an explicit choice of a stack this command starts
        if args.api_url or args.yjs_url:
            chosen = "--twin judges the embedded twin" if args.twin else "--backend compose starts its own stack"
            raise HarnessError(f"{chosen}; drop it or drop --api-url/--yjs-url")
        return None
    target = resolve_target(
        api_url=args.api_url,
        yjs_url=args.yjs_url,
        metrics_token=args.metrics_token,
        prometheus_url=args.prometheus_url,
        alertmanager_url=args.alertmanager_url,
        state_dir=args.state_dir,
    )
    if target is None:
        return None
    if args.scrape_interval is not None:  # its Prometheus runs already, with its own configuration
        where = f"the Prometheus at {target.prometheus_url}" if target.prometheus_url else "its Prometheus"
        raise HarnessError(
            f"--scrape-interval sets the Prometheus this command starts, but the target is "
            f"{target.label.removeprefix('on ')} and {where} scrapes at the interval its prometheus.yml sets; "
            "drop --scrape-interval (or change that file), or pass --twin to gate the embedded twin"
        )
    if args.fault or args.reference:
        given = "--fault" if args.fault else "--reference"
        raise HarnessError(
            f"{given} needs twins this command starts, but the target is {target.label.removeprefix('on ')}; "
            "drop it, or pass --twin to gate the embedded twin"
        )
    if not target.prometheus_url:
        raise HarnessError(
            f"the gate's checks need a Prometheus scraping {target.api_url}: start monitoring around it with "
            f"`codesync-load stack up --api-url {target.api_url} --yjs-url {target.yjs_url} --metrics-token T`, "
            "or pass --prometheus-url"
        )
    return target


def _run_load(args: argparse.Namespace, stack: Any, run_dir: Path) -> int:
    """The run command's own function against the stack already up (no second stack)."""
    from codesync_load.commands import run as run_command

    parser = argparse.ArgumentParser(prog="codesync-load")
    run_command.register(parser.add_subparsers())
    argv = [
        "run",
        f"--profile={args.profile}",
        f"--run-dir={run_dir}",
        f"--api-url={stack.api_url}",
        f"--yjs-url={stack.yjs_url}",
        f"--bcrypt-rounds={args.bcrypt_rounds}",
    ]
    if stack.metrics_token:
        argv.append(f"--metrics-token={stack.metrics_token}")  # a token may start with "-"
    if args.duration_scale is not None:
        argv += ["--duration-scale", repr(args.duration_scale)]
    if args.max_users:
        argv += ["--max-users", str(args.max_users)]
    if args.timeout:
        argv += ["--timeout", repr(args.timeout)]
    return int(run_command.run(parser.parse_args(argv)) or 0)


def _scraped_until_now(*stacks: Any) -> None:
    """The scrape barrier before a trial's (or a pair's) load: verify.context.scraped_until_now."""
    from verify.context import scraped_until_now

    scraped_until_now(*(stack.prometheus_url for stack in stacks))


def _load_result(run_dir: Path, code: int) -> Any:
    """A check-shaped verdict on the load run itself: its ledger must be complete."""
    from codesync_load.ledger import LedgerError, read_status
    from verify.checks.base import CheckResult

    try:
        complete, reason = read_status(run_dir / "ledger.json")
    except LedgerError as err:
        raise HarnessError(f"the load run left no usable ledger ({err})") from None
    if complete:
        result = CheckResult.passed("the load ran to the end; the ledger is complete", measured=f"locust exit {code}")
    else:
        result = CheckResult.failed(f"the load run did not finish: {reason}", measured=f"locust exit {code}")
    result.name = "load-run-complete"
    return result


def _trial(
    args: argparse.Namespace, spec: Any, stack: Any, run_dir: Path, checks: list[Any], info: list[Any]
) -> dict[str, Any]:
    """One candidate trial: its load, then its checks, gates and baseline values."""
    return _judge(args, spec, stack, run_dir, _run_load(args, stack, run_dir), checks, info)


def _judge(
    args: argparse.Namespace, spec: Any, stack: Any, run_dir: Path, code: int, checks: list[Any], info: list[Any]
) -> dict[str, Any]:
    """Checks, gates and baseline values of a candidate trial whose load already ran (exit `code`)."""
    from codesync_load.baseline import trial_values, write_values
    from codesync_load.gates import WindowQuery, evaluate_gates
    from verify.context import VerifyContext, VerifyOptions, monitoring_options
    from verify.live import LiveTarget, attach_live
    from verify.report import strict_verdicts
    from verify.result_sets import write_result_set

    load = _load_result(run_dir, code)
    options = VerifyOptions(run_dir=run_dir, prometheus_url=stack.prometheus_url, live_facts=True)
    if args.target is not None:
        monitoring_options(options, args.target.monitoring)
    ctx = VerifyContext(options)
    # The security/integrity checks talk to the target itself; they run after the
    # reconciliation checks (registry order), once the load window's last scrape is in.
    attach_live(ctx, target=LiveTarget.from_stack(stack))
    from verify.tracker import TrackerAccess, attach_tracker  # the error-tracker witness

    # An outside target's tracker was resolved with the options; a stack this gate started has its own.
    own = args.target is None
    attach_tracker(ctx, TrackerAccess.from_record(getattr(stack, "tracker_record", None)) if own else args.tracker)
    explicit = {chk.name for chk in checks} if args.check else set()
    results = strict_verdicts([chk.run(ctx) for chk in checks], args.strict, explicit)
    informational = [chk.run(ctx) for chk in info]
    from reports.snapshot import capture_quietly  # the series the report draws, while the stack is up

    print(capture_quietly(stack.prometheus_url, run_dir), flush=True)
    if results or informational:
        inputs = {need: ctx.describe(need) for need in ("rules", "dashboard", "contract", "expectations", "prom")}
        options = {"gate": args.profile, "check": [c.name for c in checks], "informational": [c.name for c in info]}
        write_result_set(run_dir, results + informational, inputs, options=options, target=_label(args))
    doc = ctx.ledger_doc
    needs_prom = any(g.metric.side == "server" for g in spec.gates) or any(
        m.side == "server" for m in spec.baseline.metrics
    )
    query = WindowQuery(ctx.prom, ctx.window.start, ctx.after_time) if needs_prom else None
    gates = evaluate_gates(spec.gates, [doc], [query])
    values = trial_values(run_dir, spec.baseline.metrics, query) if spec.baseline.metrics else {}
    write_values(run_dir, values)
    return {
        "dir": run_dir,
        "load": load,
        "checks": results,
        "info": informational,
        "gates": gates,
        "values": values,
        "doc": doc,
        "query": query,
    }


def _pair_loads(args: argparse.Namespace, stack: Any, reference: Any, out: Path, number: int) -> tuple[int, int]:
    """Candidate and reference load of pair `number` started together; (candidate, reference) exit codes.

    The reference load runs in a worker thread (the run command only waits on its Locust
    child), the candidate's here; the pool's exit waits for both, so both children are
    stopped by their own run before this returns, also on an exception.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="reference-load") as pool:
        ref = pool.submit(_run_load, args, reference, out / f"reference-{number}")
        code = _run_load(args, stack, out / f"trial-{number}")
        return code, ref.result()


def _reference_trial(args: argparse.Namespace, spec: Any, stack: Any, run_dir: Path, code: int) -> dict[str, Any]:
    """A reference trial whose load ran (exit `code`): only the baseline metrics are measured.

    No checks or gates: the reference is the yardstick, not the thing under test; only its
    load must have run to the end (an incomplete one fails the gate's `reference` suite).
    """
    from codesync_load.baseline import trial_values, write_values
    from codesync_load.gates import WindowQuery

    load = _load_result(run_dir, code)
    query = None
    if any(m.side == "server" for m in spec.baseline.metrics):
        from verify.context import VerifyContext, VerifyOptions

        ctx = VerifyContext(VerifyOptions(run_dir=run_dir, prometheus_url=stack.prometheus_url))
        query = WindowQuery(ctx.prom, ctx.window.start, ctx.after_time)
    values = trial_values(run_dir, spec.baseline.metrics, query)
    write_values(run_dir, values)
    return {"dir": run_dir, "load": load, "values": values}


def _show_values(side: str, number: int, spec: Any, values: dict[str, float | None]) -> None:
    from codesync_load.gates import format_value

    shown = ", ".join(f"{m.name} = {format_value(m, values.get(m.name))}" for m in spec.baseline.metrics)
    if shown:
        print(f"  {side} {number}: {shown}", flush=True)


def _merge_gates(spec: Any, trials: list[dict[str, Any]]) -> list[Any]:
    """One result per gate over every trial (re-evaluated on all ledgers/windows together)."""
    from codesync_load.gates import evaluate_gates

    if len(trials) == 1:
        return trials[0]["gates"]
    return evaluate_gates(spec.gates, [t["doc"] for t in trials], [t["query"] for t in trials])


def _label(args: argparse.Namespace) -> str:
    from codesync_load.target import EMBEDDED_TWIN

    target = getattr(args, "target", None)
    if target is None and getattr(args, "backend", "local") == "compose":
        return "on the compose stack (docker-compose.test.yml)"
    return EMBEDDED_TWIN if target is None else target.label


def _target_record(args: argparse.Namespace) -> dict[str, Any]:
    from codesync_load.target import EMBEDDED_TWIN

    target = getattr(args, "target", None)
    return {"label": EMBEDDED_TWIN, "source": "twin", "twin": True} if target is None else target.record()


def _clipped(result: Any, width: int = 60) -> Any:
    """A copy whose name fits the verdict table (server gates quote whole PromQL expressions)."""
    import copy

    if len(result.name) <= width:
        return result
    short = copy.copy(result)
    short.name = result.name[: width - 3] + "..."
    return short


def run(args: argparse.Namespace) -> int:
    spec, profile, out = _validate(args)
    try:
        return _run_validated(args, spec, profile, out)
    except HarnessError:
        raise
    except Exception as err:  # a bug must still end as "the harness could not run" (exit 2), not exit 1
        out.mkdir(parents=True, exist_ok=True)
        (out / "gate-error.txt").write_text(traceback.format_exc())
        raise HarnessError(
            f"the gate crashed ({type(err).__name__}: {err}); traceback in {out / 'gate-error.txt'}"
        ) from None


def _run_validated(args: argparse.Namespace, spec: Any, profile: Any, out: Path) -> int:
    from codesync_load.stack import open_stack
    from verify.checks import selected

    patterns = args.check if args.check is not None else list(spec.checks)
    checks = selected(patterns) if patterns else []
    if patterns and not checks:
        raise HarnessError(f"no verify check matches {patterns}; list them with `pytest verify --collect-only -q`")
    info = [] if args.gating_only else [c for c in selected(None) if c not in checks]
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"gate {_label(args)}: profile {profile.name}, {len(spec.gates)} gates from {spec.path}, {len(checks)} checks, "
        f"{args.trials} trial(s), faults {args.fault or 'none'}; {len(info)} informational checks",
        flush=True,
    )

    def local_stack(name: str, faults: list[str]) -> Any:
        return open_stack(
            args.backend,
            state_dir=str(out / name),
            metrics_token=secrets.token_hex(16),
            faults=faults,
            twin_args=["--bcrypt-rounds", str(args.bcrypt_rounds)],
            scrape_interval=args.scrape_interval or "1s",
        )

    stack = local_stack("stack", list(args.fault)) if args.target is None else args.target.stack()
    reference = local_stack("reference-stack", list(args.reference_fault)) if args.reference else None
    trials: list[dict[str, Any]] = []
    references: list[dict[str, Any]] = []
    try:
        stack.up()
        print(
            f"{'stack ready' if args.target is None else 'target (started by nobody here)'}: api {stack.api_url} "
            f"yjs {stack.yjs_url} prometheus {stack.prometheus_url} alertmanager {stack.alertmanager_url}",
            flush=True,
        )
        if reference is not None:
            reference.up()
            print(
                f"reference stack ready (faults {args.reference_fault or 'none'}): api {reference.api_url} "
                f"yjs {reference.yjs_url}; each pair's loads start together",
                flush=True,
            )
        if reference is None:
            for number in range(1, args.trials + 1):
                print(f"trial {number}/{args.trials} ...", flush=True)
                _scraped_until_now(stack)
                trials.append(_trial(args, spec, stack, out / f"trial-{number}", checks, info))
        else:
            codes = []
            for number in range(1, args.trials + 1):
                print(f"pair {number}/{args.trials}: reference and candidate loads at once ...", flush=True)
                _scraped_until_now(stack, reference)
                codes.append(_pair_loads(args, stack, reference, out, number))
            for number, (code, ref_code) in enumerate(codes, 1):
                print(f"trial {number}/{args.trials}: checks and gates ...", flush=True)
                trials.append(_judge(args, spec, stack, out / f"trial-{number}", code, checks, info))
                references.append(_reference_trial(args, spec, reference, out / f"reference-{number}", ref_code))
                _show_values("reference", number, spec, references[-1]["values"])
                _show_values("candidate", number, spec, trials[-1]["values"])
        gates = _merge_gates(spec, trials)  # server gates query Prometheus: before it stops
    finally:
        if reference is not None:
            reference.down()
        stack.down()
    return _conclude(args, spec, out, trials, gates, references)


def _conclude(
    args: argparse.Namespace,
    spec: Any,
    out: Path,
    trials: list[dict[str, Any]],
    gates: list[Any],
    references: list[dict[str, Any]],
) -> int:
    from codesync_load.baseline import compare_to_baseline, load_baseline, save_baseline
    from reports import write_reports
    from reports.junit import write_junit_suites
    from verify.report import render_table

    baseline: list[Any] = []
    candidate = {m.name: [t["values"].get(m.name) for t in trials] for m in spec.baseline.metrics}
    if args.baseline is not None:
        baseline = compare_to_baseline(load_baseline(args.baseline), candidate, spec.baseline, str(args.baseline))
    elif references:
        measured = {m.name: [t["values"].get(m.name) for t in references] for m in spec.baseline.metrics}
        baseline = compare_to_baseline(
            measured, candidate, spec.baseline, "reference trials", against="reference", paired=True
        )
    if args.save_baseline is not None and spec.baseline.metrics:
        saved = save_baseline(
            [t["dir"] for t in trials],
            args.save_baseline,
            spec.baseline.metrics,
            note=f"gate --profile {args.profile} faults {args.fault}",
        )
        print(f"baseline saved: {saved}")
    checks_all = [t["load"] for t in trials]
    suites: dict[str, list[Any]] = {}
    for number, trial in enumerate(trials, 1):
        label = "verify" if len(trials) == 1 else f"verify trial-{number}"
        suites[label] = [trial["load"], *trial["checks"]]
        checks_all += trial["checks"]
    suites["gates"] = gates
    if references:
        suites["reference"] = [t["load"] for t in references]
    if baseline:
        suites["baseline"] = baseline
    everything = [r for results in suites.values() for r in results]
    code = 2 if any(r.verdict == "error" for r in everything) else int(any(r.verdict == "fail" for r in everything))
    junit = write_junit_suites(suites, args.junit or out / "junit.xml")
    doc = {
        "schema": "codesync-gate/1",
        "exit_code": code,
        "target": _target_record(args),
        "faults": list(args.fault),
        "profile": args.profile,
        "gates_file": str(spec.path),
        "trials": [str(t["dir"]) for t in trials],
        "values": [t["values"] for t in trials],
        "checks": [r.to_dict() for results in list(suites.values())[: len(trials)] for r in results],
        "gates": [r.to_dict() for r in gates],
        "baseline": [r.to_dict() for r in baseline],
        "comparison": "reference" if references else ("baseline" if args.baseline is not None else None),
        "reference": {
            "faults": list(args.reference_fault),
            "trials": [str(t["dir"]) for t in references],
            "values": [t["values"] for t in references],
        }
        if references
        else None,
        "info": [r.to_dict() for t in trials for r in t["info"]],
    }
    (out / "gate.json").write_text(json.dumps(doc, indent=1, default=str))
    verdict = {0: "pass", 1: "fail", 2: "error"}[code]
    title = f"gate {args.profile} {_label(args)}" + (f" with {', '.join(args.fault)}" if args.fault else "")
    paths = write_reports(
        [t["dir"] for t in trials],
        out / "report",
        checks=doc["checks"],
        gates=doc["gates"],
        baseline=doc["baseline"],
        info=doc["info"],
        title=title,
        notes=[
            f"target: {_label(args).removeprefix('on ')}",
            f"gates from {spec.path}",
            f"faults: {', '.join(args.fault) or 'none'}",
            f"JUnit: {junit}",
        ],
        verdict=verdict,
    )
    print()
    print(render_table([_clipped(r) for r in everything]))
    for result in baseline:  # every comparison's test, p, effect and interval, pass or fail
        print(f"{result.name}: {result.verdict.upper()} {result.summary}")
    for result in everything:
        if result.verdict in ("fail", "error"):
            print()
            print(result.render())
    failed = [
        f"{r.name}: {r.summary}"[:140] if r.name.startswith(("gate: ", "baseline: ")) else r.name
        for r in everything
        if r.verdict in ("fail", "error")
    ]
    judged_all = not any(r.verdict == "skip" for r in everything)
    passed = "every gate and check passed" if judged_all else "every gate and every judged check passed"
    reason = passed if not failed else f"{len(failed)} failed ({'; '.join(failed[:3])})"
    skipped = sorted({r.name for r in everything if r.not_judged})
    if skipped:  # a check that could not judge did not pass either: the last line says which
        more = ", ..." if len(skipped) > 4 else ""
        reason += f"; {len(skipped)} not judged: {', '.join(skipped[:4])}{more}"
    absent = sorted({r.name for r in everything if r.verdict == "skip" and not r.applies})
    if absent:
        reason += f"; {len(absent)} not applicable: {', '.join(absent[:4])}" + (", ..." if len(absent) > 4 else "")
    print(f"gate {verdict.upper()} {_label(args)}: {reason}; report {paths['html']}")
    return code
