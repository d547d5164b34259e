"""`codesync-load run`: one headless load run against a stack, leaving a run directory.

    $ codesync-load run --profile smoke                      # starts a local stack, stops it after
    $ codesync-load run --profile baseline --api-url http://127.0.0.1:4000 --yjs-url ws://127.0.0.1:4001
    $ CODESYNC_DURATION_SCALE=0.05 codesync-load run --profile soak --processes 2
    ...
    reports/runs/20261127T050000Z-smoke-1234            <- always the last line

Target, in order (codesync_load/target.py): --api-url/--yjs-url when given; else the stack
`codesync-load stack up` left running; else (only then) the embedded twin in a local stack
started for this run (its state under the run directory) and stopped when the run ends, pass
or fail. The target's words ("on the embedded twin", or its URLs) are in target.json and in
the last verdict line. Locust runs as a child process (`locust -f
loadtests --headless`), because importing Locust here would monkey-patch this process; the
child writes Locust's JSON/HTML/CSV, the phase windows and the ledger into the run directory
and this command reports the ledger's state. A bad profile or an unreachable target fails
before anything starts, with one line.

bcrypt: a local stack started here runs the twin at --bcrypt-rounds (default 12, CodeSync's
cost), so onboarding waves cost what they cost in production; pass --bcrypt-rounds 4 for a
quick smoke run where password hashing is not what is being measured (the tests do).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from codesync_load.errors import HarnessError
from codesync_load.generator_cpu import GENERATOR_FILE, GeneratorSampler
from codesync_load.load import LOADTESTS_DIR, check_target, child_error, start_load

RUNS_DIR = Path("reports") / "runs"
# Time allowed beyond the profile's own duration: start-up, the drain, the final reports.
SLACK_S = 120.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a load profile headless and write a run directory (ledger, phases, Locust reports)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--profile", default="smoke", help="profile name in scenarios/profiles/ or a .toml path")
    parser.add_argument("--duration-scale", type=float, default=None, help="multiply stage durations (CI: 0.05)")
    parser.add_argument("--max-users", type=int, default=0, help="cap every stage's users (0 = no cap)")
    parser.add_argument("--processes", type=int, default=0, help="Locust worker processes (0 = a single process)")
    parser.add_argument("--run-dir", type=Path, default=None, help="where to write (default reports/runs/<time>-...)")
    parser.add_argument("--api-url", default=None, help="CodeSync API of an existing deployment")
    parser.add_argument("--yjs-url", default=None, help="its Yjs server (required with --api-url)")
    parser.add_argument("--metrics-token", default=None, help="its /metrics bearer token, for the verifier")
    parser.add_argument("--prometheus-url", default=None, help="a Prometheus scraping it (default: the recorded one)")
    parser.add_argument("--bcrypt-rounds", type=int, default=12, help="bcrypt cost of a twin started here")
    parser.add_argument("--fault", action="append", default=[], help="fault for a twin started here (repeatable)")
    parser.add_argument("--timeout", type=float, default=None, help="hard limit in seconds (default: profile + 120)")
    scenario = parser.add_argument_group("fault scenario (verify/live/db_outage.py)")
    scenario.add_argument(
        "--scenario",
        choices=("db-outage",),
        default=None,
        help="db-outage: stop the database a quarter into the load, start it again at three quarters, and record "
        "what each witness noticed when (RUN/witnesses.json, the report's witnesses section). On the twin: a "
        "throwaway PostgreSQL cluster of its own; on a given target: --db-stop-cmd and --db-start-cmd",
    )
    scenario.add_argument(
        "--health-checks-db",
        action="store_true",
        help="a twin started here answers /health as a fixed CodeSync would (503 while the database is down)",
    )
    scenario.add_argument("--db-stop-cmd", default=None, help="shell command stopping the target's database")
    scenario.add_argument("--db-start-cmd", default=None, help="shell command starting it again")
    parser.add_argument("--locustfile", type=Path, default=LOADTESTS_DIR, help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


def default_run_dir(profile_name: str) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return RUNS_DIR / f"{stamp}-{profile_name}"


def _resolve_target(args: argparse.Namespace, run_dir: Path) -> tuple[dict[str, Any], Any]:
    """(target URLs and token, a stack this command started or None), by codesync_load.target:
    the options given, else the recorded stack, else (only then) a twin started for this run."""
    from codesync_load.stack import open_stack
    from codesync_load.target import resolve_target, target_of_stack

    found = resolve_target(
        api_url=args.api_url,
        yjs_url=args.yjs_url,
        metrics_token=args.metrics_token,
        prometheus_url=getattr(args, "prometheus_url", None),
    )
    if found is not None:
        if args.fault:
            raise HarnessError(
                f"--fault switches faults on a twin this command starts, but the target is given ({found.label}); "
                "drop --fault, or pass faults to `codesync-load stack up --fault ...`"
            )
        if getattr(args, "health_checks_db", False):
            raise HarnessError(
                f"--health-checks-db changes a twin this command starts, but the target is given "
                f"({found.label}); drop it"
            )
        print(f"target {found.label.removeprefix('on ')}", flush=True)
        return _target_dict(found), None
    if not 4 <= args.bcrypt_rounds <= 31:
        raise HarnessError(f"--bcrypt-rounds {args.bcrypt_rounds} is out of range; bcrypt takes 4-31")
    print("no target given and no stack recorded: starting the embedded twin for this run ...", flush=True)
    outage = getattr(args, "outage_cluster", None)  # the db-outage scenario's throwaway cluster
    stack = open_stack(
        "local",
        state_dir=str(run_dir / "stack"),
        faults=list(args.fault),
        twin_args=["--bcrypt-rounds", str(args.bcrypt_rounds)]
        + (["--health-checks-db"] if getattr(args, "health_checks_db", False) else []),
        metrics_token=args.metrics_token,
        # the outage's own database, and a clock fast enough for alerts and probes to notice it
        database_url=outage.url if outage else None,
        compress=30.0 if outage else None,
        scrape_interval="1s" if outage else None,
    )
    stack.up()
    print(f"local stack ready: api {stack.api_url} yjs {stack.yjs_url} prometheus {stack.prometheus_url}", flush=True)
    return _target_dict(target_of_stack(stack, "twin")), stack


def _prepare_outage(args: argparse.Namespace, duration: float) -> Any:
    """The db-outage scenario's outage, or None. A given target (options or a recorded stack) needs
    the operator's commands; the twin started here gets a throwaway cluster (set up here, its
    outage made once the stack is up). Bad combinations are one line before anything starts."""
    from codesync_load.target import resolve_target
    from verify.live.db_outage import DbOutage, outage_times, shell_db_outage

    commands = (getattr(args, "db_stop_cmd", None), getattr(args, "db_start_cmd", None))
    if getattr(args, "scenario", None) != "db-outage":
        if any(commands):
            raise HarnessError("--db-stop-cmd/--db-start-cmd belong to --scenario db-outage; add it or drop them")
        return None
    stop_after, start_after = outage_times(duration)
    given = args.api_url or resolve_target(
        api_url=None, yjs_url=None, metrics_token=None, prometheus_url=getattr(args, "prometheus_url", None)
    )
    if given:
        if not all(commands):
            raise HarnessError(
                "--scenario db-outage on a target this command does not start needs --db-stop-cmd and --db-start-cmd "
                "(the commands that stop and start its database)"
            )
        return shell_db_outage(args.db_stop_cmd, args.db_start_cmd, stop_after, start_after)
    if any(commands):
        raise HarnessError(
            "--db-stop-cmd/--db-start-cmd are for a given target; the twin started here gets a throwaway "
            "PostgreSQL cluster of its own: drop them"
        )
    from codesync_load.pgcluster import ThrowawayCluster

    cluster = ThrowawayCluster()
    args.outage_cluster = cluster
    cluster.start()
    print(f"db-outage: throwaway PostgreSQL cluster at {cluster.address} ({cluster.root})", flush=True)
    return DbOutage(cluster.stop, cluster.start, stop_after, start_after, f"throwaway cluster {cluster.address}")


def _witness_lines(run_dir: Path, prometheus_url: str | None, outage: Any, tracker: dict | None) -> list[str]:
    """What each witness noticed of the outage, one line each (RUN/witnesses.json holds it all)."""
    from verify.live.db_outage import tracker_witness, witness_timeline

    events = tracker_witness(tracker)
    doc = witness_timeline(run_dir, prometheus_url, outage.record(), end=time.time(), error_events=events)
    lines = [f"db-outage: {doc['note']}"] if doc.get("note") else []
    if doc.get("uptime_check"):
        check = doc["uptime_check"]
        lines.append(f"db-outage: {check['check']} {check['verdict']}: {check['summary']}")
    for incident in doc["incidents"]:
        stopped = incident["stopped_at"]
        lines.append(f"db-outage: database stopped at {stopped:.1f}, started at {incident['started_at'] or 0:.1f}")
        for row in incident["witnesses"]:
            at = row["first_notice"]
            when = f"{round(at - stopped, 1) + 0.0:+.1f} s" if at is not None else "never"  # never "-0.0"
            lines.append(f"  {row['witness']:16} {when:>9}  {row['how']}")
    return lines


def _target_dict(target: Any) -> dict[str, Any]:
    # the token and the tracker's API token stay out of target.json (see run())
    return {**target.record(), "metrics_token": target.metrics_token, "tracker": target.tracker}


def _scraped_until_now(prometheus_url: str) -> None:
    """Start the load only once the stack's Prometheus has scraped the target after now, so that
    `verify` cannot count traffic from just before the run as the run's own (see
    verify.context.scraped_until_now). Best effort: a Prometheus that cannot answer is named on
    one line and the run goes ahead (the load needs no Prometheus; `verify` will say more)."""
    from verify.context import scraped_until_now

    try:
        scraped_until_now(prometheus_url)
    except HarnessError as err:
        print(f"warning: no scrape before the load: {err}", file=sys.stderr, flush=True)


def keep_snapshot(prometheus_url: str, run_dir: Path) -> str:
    """Copy the run's series out of Prometheus into run_dir/snapshot while it is up (one line back).

    Waits for one scrape after the load first, so the snapshot holds where the series ended.
    """
    from reports.snapshot import capture_quietly

    _scraped_until_now(prometheus_url)
    return capture_quietly(prometheus_url, run_dir)


def summary_lines(run_dir: Path) -> list[str]:
    """What the run's ledger says it sent and saw, in a few lines (printed after every run)."""
    from codesync_load.ledger import Ledger, LedgerError, read_status

    path = run_dir / "ledger.json"
    try:
        ledger = Ledger.read(path)
        complete, reason = read_status(path)
    except LedgerError as err:
        return [f"ledger: unreadable ({err})"]
    failed = [r for r in ledger.results if not r.get("ok")]
    lines = [
        f"ledger: {'complete' if complete else 'INCOMPLETE (' + reason + ')'}",
        f"  http requests {ledger.total('http')}, 429s {ledger.total('rate_limited')}, "
        f"errors {ledger.total('error')}, client failures {ledger.total('failure')}",
        f"  websocket connections opened {ledger.total('connection', event='opened')}, "
        f"refused {ledger.total('connection', event='refused')}, closed {ledger.total('connection', event='closed')}",
        f"  yjs updates sent {ledger.get('yjs_update', 'sent')}, applied {ledger.get('yjs_update', 'applied')}, "
        f"propagation samples {len(ledger.samples('yjs_propagation_s'))}",
        f"  checks {len(ledger.results)}, failed {len(failed)}"
        + (f": {', '.join(r['check'] + ' ' + r['subject'] for r in failed[:3])}" if failed else ""),
    ]
    return lines + unexpected_lines(ledger)


def unexpected_lines(ledger: Any, limit: int = 10) -> list[str]:
    """The HTTP answers the load model did not intend, by route and status, most frequent first.

    "403 FORBIDDEN x 262 on PUT /api/sessions/:id/files/:path/content": the one line that
    says which rule of the target the load broke (or which defect the target has).
    """
    rows = sorted(ledger.entries("unexpected"), key=lambda e: (-e[1], str(e[0][1]), str(e[0][0])))
    if not rows:
        return []
    total = sum(count for _, count in rows)
    lines = [f"  unintended HTTP answers {total}, by route and status:"]
    for (method, route, status, code), count in rows[:limit]:
        lines.append(f"    {status or 'no answer'} {code} x {count} on {method} {route}")
    if len(rows) > limit:
        lines.append(f"    ... and {len(rows) - limit} more (ledger.json, counts.unexpected)")
    return lines


def run(args: argparse.Namespace) -> int:
    from scenarios.profiles import load_profile

    profile = load_profile(args.profile, args.duration_scale)
    if args.max_users < 0:
        raise HarnessError(f"--max-users {args.max_users} is negative; pass 0 (no cap) or a positive number")
    if args.processes < 0:
        raise HarnessError(f"--processes {args.processes} is negative; pass 0 (one process) or a worker count")
    if not Path(args.locustfile).exists():
        raise HarnessError(f"locustfile {args.locustfile} does not exist; run from a checkout of codesync-load")
    run_dir = (args.run_dir or default_run_dir(profile.name)).resolve()
    if (run_dir / "ledger.json").exists():
        raise HarnessError(f"{run_dir} already holds a run; pass a new --run-dir")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise HarnessError(
            f"cannot create the run directory {run_dir} ({err.strerror}); pass another --run-dir"
        ) from None

    stack = None
    child = None
    started = False
    outage = None
    try:
        outage = _prepare_outage(args, profile.total_duration)
        target, stack = _resolve_target(args, run_dir)
        check_target(target["api_url"], target["yjs_url"], health=False)
        (run_dir / "target.json").write_text(
            json.dumps({k: v for k, v in target.items() if k not in ("metrics_token", "tracker")}, indent=1)
        )
        if target.get("prometheus_url"):
            _scraped_until_now(target["prometheus_url"])
        timeout = args.timeout or profile.total_duration + SLACK_S
        print(f"running profile {profile.name} ({profile.total_duration:g} s of load) ...", flush=True)
        output = run_dir / "locust.out"
        child = start_load(
            profile, target, run_dir, locustfile=args.locustfile, max_users=args.max_users, processes=args.processes
        )
        started = True
        if outage is not None:
            outage.start_timer()
            print(
                f"db-outage: the database ({outage.what}) stops at +{outage.stop_after:g} s, starts at "
                f"+{outage.start_after:g} s",
                flush=True,
            )
        sampler = GeneratorSampler(child.pid, run_dir / GENERATOR_FILE).start()
        deadline = time.monotonic() + timeout
        while child.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        timed_out = child.alive()
        code = child.stop(grace=30.0)
        child = None
        sampler.stop()
        if outage is not None:
            outage.cancel()  # a load that ended early still gets its database back
        if target.get("prometheus_url") and (run_dir / "ledger.json").exists():
            print(keep_snapshot(target["prometheus_url"], run_dir), flush=True)
        if outage is not None and (run_dir / "ledger.json").exists():
            for line in _witness_lines(run_dir, target.get("prometheus_url"), outage, target.get("tracker")):
                print(line, flush=True)
        if timed_out:
            print(f"locust was stopped after the {timeout:g} s limit; its ledger stays incomplete", file=sys.stderr)
        problem = child_error(output)
        if problem and not (run_dir / "ledger.json").exists():
            raise HarnessError(problem)
        for line in summary_lines(run_dir):
            print(line)
        print(f"load {profile.name} ran {target['label']}: locust exit {code}", flush=True)
    except HarnessError:
        if not started and not (run_dir / "stack").exists():
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing ran: leave no empty run behind
        raise
    finally:
        if child is not None:
            child.stop(grace=10.0)
        if outage is not None:
            outage.cancel()
        if stack is not None:
            stack.down()
        if getattr(args, "outage_cluster", None) is not None:
            args.outage_cluster.remove()  # stopped by PID, its directory removed, also on failure
    print(run_dir)
    if timed_out:
        return 1
    return int(code or 0)
