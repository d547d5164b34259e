"""`codesync-load capacity`: how many instances N concurrent editors need, and where one bends.

    $ codesync-load capacity --target-editors 10000              # run the capacity step profile, analyse
    $ codesync-load capacity --from reports/runs/<run>            # analyse a recorded step run
    $ codesync-load capacity --api-url URL --yjs-url URL --profile my-steps.toml
    ...
    capacity: N at SLO 60; N* 84.2 (USL sigma 0.031, kappa 0.00013, R2 0.97); knee 70; 10000 editors need 397 instances
    reports/runs/<run>/capacity/capacity.html                    <- always the last line

Runs the step profile through `codesync-load run` (a local stack started for it, the stack
`stack up` left running, or --api-url/--yjs-url), then codesync_load.capacity analyses the
run directory: per-step steady state, the largest N within the SLO of --slo, a USL fit,
Little's law, the knee, regressions on the target's own metrics and the projection. Exit 0
with a full answer, 1 when the answer is partial (what is missing is listed), 2 on bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from codesync_load.errors import HarnessError

DEFAULT_SLO = Path(__file__).resolve().parents[2] / "gates" / "ci.toml"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "capacity",
        help="run (or read) a step profile and report capacity: SLO, USL fit, knee, instances needed",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--from", dest="from_run", type=Path, default=None, metavar="RUN", help="analyse this run")
    parser.add_argument("--profile", default="capacity", help="step profile to run (default capacity)")
    parser.add_argument("--duration-scale", type=float, default=None, help="multiply the step durations")
    parser.add_argument("--slo", type=Path, default=DEFAULT_SLO, help="gate file whose gates are the SLO per step")
    parser.add_argument("--target-editors", type=int, default=None, metavar="N", help="editors to plan for")
    parser.add_argument("--headroom", type=float, default=0.30, help="share of an instance kept free (default 0.3)")
    parser.add_argument("--run-dir", type=Path, default=None, help="where the run goes (default reports/runs/...)")
    parser.add_argument("--out", type=Path, default=None, help="where the report goes (default RUN/capacity)")
    parser.add_argument("--api-url", default=None, help="CodeSync API of an existing deployment")
    parser.add_argument("--yjs-url", default=None, help="its Yjs server")
    parser.add_argument("--metrics-token", default=None, help="its /metrics bearer token")
    parser.add_argument("--bcrypt-rounds", type=int, default=12, help="bcrypt cost of a twin started for the run")
    parser.set_defaults(func=run)


def _run_load(args: argparse.Namespace) -> Path:
    from codesync_load.commands import run as run_command

    parser = argparse.ArgumentParser(prog="codesync-load")
    run_command.register(parser.add_subparsers())
    run_dir = (args.run_dir or run_command.default_run_dir(Path(args.profile).stem)).resolve()
    argv = ["run", f"--profile={args.profile}", f"--run-dir={run_dir}", f"--bcrypt-rounds={args.bcrypt_rounds}"]
    if args.api_url or args.yjs_url:
        argv += [f"--api-url={args.api_url or ''}", f"--yjs-url={args.yjs_url or ''}"]
    if args.metrics_token:
        argv.append(f"--metrics-token={args.metrics_token}")
    if args.duration_scale is not None:
        argv += ["--duration-scale", repr(args.duration_scale)]
    code = int(run_command.run(parser.parse_args(argv)) or 0)
    if code not in (0, 1) or not (run_dir / "ledger.json").exists():
        raise HarnessError(f"the capacity run left no ledger in {run_dir} (exit {code}); see its locust.log")
    return run_dir


def run(args: argparse.Namespace) -> int:
    from codesync_load.capacity.analysis import analyse
    from reports.capacity import write_capacity_report

    if args.target_editors is not None and args.target_editors <= 0:
        raise HarnessError(f"--target-editors {args.target_editors} is not a positive number of editors")
    if not 0 <= args.headroom < 1:
        raise HarnessError(f"--headroom {args.headroom} is not a share; pass e.g. 0.3 to keep 30 % free")
    if args.slo is not None and not args.slo.exists():
        raise HarnessError(f"SLO gate file {args.slo} does not exist; pass --slo gates/ci.toml or another gate file")
    if args.from_run is not None:
        run_dir = args.from_run
        if not run_dir.is_dir():
            raise HarnessError(f"{run_dir} is not a directory; pass the run directory `codesync-load run` printed")
        if not (run_dir / "ledger.json").exists():
            raise HarnessError(f"{run_dir} holds no ledger.json; pass a run directory of a step profile")
    else:
        run_dir = _run_load(args)
    result = analyse(run_dir, slo=args.slo, target_editors=args.target_editors, headroom=args.headroom)
    paths = write_capacity_report(result, args.out or run_dir / "capacity")
    for problem in result["problems"]:
        print(f"partial: {problem}")
    print(result["verdict_line"])
    print(paths["html"])
    return 1 if result["partial"] else 0
