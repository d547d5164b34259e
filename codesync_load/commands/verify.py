"""`codesync-load verify RUN_DIR`: hold a load run against the target's metrics, rules and dashboard.

    $ codesync-load verify reports/runs/20260101-120000-smoke
    $ codesync-load verify RUN --backend external --prometheus-url http://staging:9090 \\
          --rules monitoring/guide/alerts.yml --dashboard monitoring/guide/codesync.json \\
          --contract codesync_load/contract/guide.toml

    $ codesync-load verify RUN --live --alert-scenarios       # also the security and alert checks
    $ codesync-load verify RUN --grafana-url http://127.0.0.1:3001 --grafana-user admin   # + Grafana's API

With a Grafana (--grafana-url, or the Grafana of a compose stack recorded by `stack up`),
dashboard-grafana-matches-prometheus also asks Grafana for every panel; without one it is skipped.

Prints one line per check (the names the pytest suite `pytest verify --run-dir RUN` uses),
then the evidence of every failure; writes RUN/verify/junit.xml and RUN/verify/results.json.
Exit 0 when every check passed (a check that could not judge is listed as not judged or not
applicable, with why, never as passed), 1 when a check failed (with --strict also when a check
that applies could not judge), 2 when the verification could not run (bad input, unreachable
Prometheus, a check selected with --check that could not judge).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from codesync_load.errors import HarnessError
from codesync_load.urls import require_http_url

if TYPE_CHECKING:
    from verify.context import VerifyContext, VerifyOptions
    from verify.grafana_api import GrafanaAccess
    from verify.live import LiveTarget, StackPool


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="verify a load run against the target's metrics, alert rules and dashboard",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="run directory (holds ledger.json)")
    stack = parser.add_argument_group("where the telemetry is")
    stack.add_argument(
        "--backend",
        choices=("local", "compose", "external"),
        default=None,
        help="stack to read: local/compose = the one `codesync-load stack up` recorded; external = --prometheus-url "
        "(default: --prometheus-url if given, else the run's own Prometheus, else the recorded stack)",
    )
    stack.add_argument("--prometheus-url", default=None, help="Prometheus base URL (external backend)")
    stack.add_argument("--state-dir", default=None, help="state directory of the recorded stack")
    stack.add_argument(
        "--scrape",
        action="append",
        default=[],
        metavar="JOB=URL",
        help="read exported series by scraping URL as JOB instead of from Prometheus (repeatable)",
    )
    stack.add_argument("--metrics-token", default=None, help="bearer token for --scrape URLs")
    files = parser.add_argument_group("what is verified (defaults: monitoring/ and the backend's metric names)")
    files.add_argument("--rules", action="append", type=Path, default=None, help="alert rules file (repeatable)")
    files.add_argument("--rule-tests", action="append", type=Path, default=None, help="promtool test file")
    files.add_argument("--dashboard", type=Path, default=None, help="Grafana dashboard JSON")
    files.add_argument("--prometheus-config", type=Path, default=None, help="prometheus.yml")
    files.add_argument("--alertmanager-config", type=Path, default=None, help="alertmanager.yml")
    files.add_argument("--contract", type=Path, default=None, help="metric contract TOML")
    files.add_argument("--expectations", type=Path, default=None, help="reconciliation table TOML")
    live = parser.add_argument_group("live checks (skipped unless asked for)")
    live.add_argument(
        "--live",
        action="store_true",
        help="run the security/integrity checks against the target: --api-url/--yjs-url, else the recorded stack",
    )
    live.add_argument("--api-url", default=None, help="CodeSync API of the target for --live")
    live.add_argument(
        "--restart-cmd",
        default=None,
        metavar="CMD",
        help="shell command that restarts the --live target (gauges-match-source-of-truth judges a restart)",
    )
    live.add_argument("--yjs-url", default=None, help="its Yjs server for --live")
    live.add_argument(
        "--alert-scenarios",
        action="store_true",
        help="prove each alert fires and routes (and stays silent when healthy): live on the target where "
        "traffic can cause it, else on generated series; on the embedded twin, on local stacks started for it",
    )
    grafana = parser.add_argument_group("Grafana's API (default: the Grafana of a recorded compose stack, else none)")
    grafana.add_argument("--grafana-url", default=None, help="Grafana base URL, e.g. http://127.0.0.1:3001")
    grafana.add_argument("--grafana-user", default=None, help="Grafana user (basic auth)")
    grafana.add_argument(
        "--grafana-password", default=None, help="its password (default $GRAFANA_PASSWORD; kept out of `ps`)"
    )
    grafana.add_argument("--grafana-token", default=None, help="a service account token (default $GRAFANA_TOKEN)")
    from verify.tracker import add_tracker_arguments

    add_tracker_arguments(parser)
    parser.add_argument(
        "--check",
        action="append",
        default=None,
        metavar="GLOB",
        help="run only matching checks; a check selected so that cannot judge is an error (exit 2)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="a check that applies to the target but could not judge fails (not-applicable ones stay listed)",
    )
    parser.add_argument("--quiet", action="store_true", help="print the table only, not the failure evidence")
    parser.set_defaults(func=run)


def resolve_prometheus(args: argparse.Namespace, ledger_meta: dict) -> str:
    """The Prometheus to read, by the precedence documented on --backend."""
    if args.backend == "external" or (args.backend is None and args.prometheus_url):
        if not args.prometheus_url:
            raise HarnessError("--backend external needs --prometheus-url URL")
        return args.prometheus_url
    if args.backend is None and ledger_meta.get("prometheus_url"):
        return str(ledger_meta["prometheus_url"])
    from codesync_load.stack import recorded_stack

    stack = recorded_stack(args.state_dir)
    if stack is None or not stack.prometheus_url:
        raise HarnessError(
            "no Prometheus to verify against: pass --prometheus-url URL, or start one with `codesync-load stack up`"
        )
    return stack.prometheus_url


def build_options(args: argparse.Namespace, needs_prometheus: bool = True) -> VerifyOptions:
    """The checks' inputs from the command line. `needs_prometheus=False` when no selected check
    reads the run's Prometheus (the alert scenarios start stacks of their own): a run whose
    stack is gone (a gate's trial) is then verified without one instead of refused."""
    import json

    from verify.context import VerifyOptions, monitoring_options

    run_dir: Path = args.run_dir
    if not run_dir.is_dir():
        raise HarnessError(f"run directory {run_dir} does not exist; pass the directory `codesync-load run` printed")
    ledger = run_dir / "ledger.json"
    if not ledger.exists():
        raise HarnessError(f"{run_dir} holds no ledger.json; is it a run directory of `codesync-load run`?")
    try:
        meta = json.loads(ledger.read_text()).get("meta") or {}
    except ValueError:
        raise HarnessError(f"{ledger} is not valid JSON; regenerate the run") from None
    opts = VerifyOptions(run_dir=run_dir)
    try:
        url = resolve_prometheus(args, meta)
    except HarnessError:
        if needs_prometheus or args.prometheus_url or args.backend:
            raise
        url = None  # nothing selected reads it; a check that would says "no Prometheus given"
    if url is not None:
        opts.prometheus_url = require_http_url(url, "Prometheus URL", "http://127.0.0.1:9090 (--prometheus-url)")
    target = getattr(args, "target", None)
    if target is not None and target.prometheus_url == opts.prometheus_url:
        monitoring_options(opts, target.monitoring)  # the files that Prometheus runs, not monitoring/
    for item in args.scrape:
        job, sep, url = item.partition("=")
        if not sep or not url:
            raise HarnessError(
                f"--scrape {item!r} is not JOB=URL; e.g. --scrape codesync-backend=http://h:4000/metrics"
            )
        if urlsplit(url).path in ("", "/"):
            raise HarnessError(
                f"--scrape {item!r} names a base URL, not a metrics page; add the path: "
                f"--scrape {job}={url.rstrip('/')}/metrics"
            )
        opts.scrape_targets[job] = (url, args.metrics_token)
    opts.live_facts = True  # scrape intervals, jobs and rule files from the Prometheus when it answers
    opts.explicit = {
        name
        for name in ("rules", "prometheus_config", "alertmanager_config", "dashboard", "contract", "expectations")
        if getattr(args, name)
    }
    if args.rules:
        opts.rules = list(args.rules)
    if args.rule_tests:
        opts.rule_tests = list(args.rule_tests)
    for name in ("dashboard", "prometheus_config", "alertmanager_config", "contract", "expectations"):
        value = getattr(args, name)
        if value is not None:
            setattr(opts, name, value)
    return opts


def grafana_access(args: argparse.Namespace, prometheus_url: str | None) -> GrafanaAccess | None:
    """The Grafana to ask: --grafana-url, else the Grafana a compose stack recorded (when that
    stack is the one verified), else None (the Grafana check is skipped)."""
    import os

    from verify.grafana_api import GrafanaAccess

    password = args.grafana_password or os.environ.get("GRAFANA_PASSWORD") or None
    token = args.grafana_token or os.environ.get("GRAFANA_TOKEN") or None
    if args.grafana_url:
        if args.grafana_user and not password:
            raise HarnessError("--grafana-user needs a password: pass --grafana-password or set $GRAFANA_PASSWORD")
        return GrafanaAccess(args.grafana_url, args.grafana_user, password, token)
    from codesync_load.stack.state import read_state, resolve_state_dir

    record = read_state(resolve_state_dir(args.state_dir)) or {}
    recorded = record.get("grafana") if record.get("backend") == "compose" else None
    if recorded and (args.backend == "compose" or record.get("prometheus_url") == prometheus_url):
        return GrafanaAccess(
            recorded["url"],
            args.grafana_user or recorded.get("user"),
            password or recorded.get("password"),
            token,
        )
    if args.grafana_user or args.grafana_password or args.grafana_token:
        raise HarnessError("--grafana-user/--grafana-password/--grafana-token need --grafana-url URL")
    return None


def resolve_verify_target(args: argparse.Namespace) -> Any:
    """The target this verification judges (codesync_load.target): --api-url/--yjs-url, else
    the recorded stack; None when neither (then the run's own target.json names it)."""
    from codesync_load.target import resolve_target

    return resolve_target(
        api_url=args.api_url,
        yjs_url=args.yjs_url,
        metrics_token=args.metrics_token,
        prometheus_url=args.prometheus_url,
        state_dir=args.state_dir,
    )


def target_label(args: argparse.Namespace) -> str:
    """The words of the verdict line: the target resolved, else what the run recorded."""
    import json

    target = getattr(args, "target", None)
    if target is not None:
        return target.label
    try:
        recorded = json.loads((args.run_dir / "target.json").read_text())
    except (OSError, ValueError):
        return "on the run's target (the run recorded none)"
    return recorded.get("label") or f"on api {recorded.get('api_url')}, yjs {recorded.get('yjs_url')}"


def live_target(args: argparse.Namespace) -> LiveTarget:
    """The target of --live: the given URLs, else the stack `codesync-load stack up` recorded."""
    from verify.live import LiveTarget

    target = getattr(args, "target", None)
    if target is None:
        raise HarnessError(
            "--live needs a running target: pass --api-url and --yjs-url, or start one with `codesync-load stack up`"
        )
    restart = None
    if args.restart_cmd:
        from verify.live.restart import shell_restart

        restart = shell_restart(args.restart_cmd)
    return LiveTarget(target.api_url, target.yjs_url, target.metrics_token, restart=restart)


def attach_live_inputs(ctx: VerifyContext, args: argparse.Namespace) -> StackPool | None:
    """Give the context what --live / --alert-scenarios ask for; returns the pool to close.

    Alert scenarios against a target the harness cannot break (given or recorded, not its
    twin) run on that target's own stack (verify.live.TargetPool: traffic-caused scenarios
    live, the others on generated series with the user's rules); only on the embedded twin do
    they start local stacks, and those run the rules and routes being judged (--rules,
    --alertmanager-config), never the harness's against the user's files.
    """
    from verify.live import StackPool, TargetPool, attach_live, local_stack_factory

    if args.live:
        attach_live(ctx, target=live_target(args))
    if not args.alert_scenarios:
        return None
    target = getattr(args, "target", None)
    if target is not None and not target.twin:
        if not target.prometheus_url:
            raise HarnessError(
                f"--alert-scenarios {target.label} need a Prometheus scraping it: run `codesync-load stack up "
                f"--api-url {target.api_url} --yjs-url {target.yjs_url}` first, or pass --prometheus-url"
            )
        pool: Any = TargetPool(target.stack(), target.label)
    else:
        monitoring = scenario_monitoring(ctx, args.run_dir / "verify" / "alert-monitoring")
        pool = StackPool(local_stack_factory(args.run_dir / "verify" / "alert-stacks", monitoring_dir=monitoring))
    attach_live(ctx, pool=pool)
    return pool


def scenario_monitoring(ctx: VerifyContext, folder: Path) -> Path | None:
    """A monitoring folder whose rules and routes are the ones this verification judges, for the
    twins of the alert scenarios; None when those are the harness's own (monitoring/)."""
    import shutil

    import yaml

    from verify.context import MONITORING

    options = ctx.options
    rules = [Path(p).resolve() for p in options.rules]
    routes = Path(options.alertmanager_config or MONITORING / "alertmanager.yml").resolve()
    if rules == [(MONITORING / "alerts.yml").resolve()] and routes == (MONITORING / "alertmanager.yml").resolve():
        return None
    folder.mkdir(parents=True, exist_ok=True)
    prometheus = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    prometheus["rule_files"] = [str(p) for p in rules]
    (folder / "prometheus.yml").write_text(yaml.safe_dump(prometheus, sort_keys=False))
    shutil.copy(routes, folder / "alertmanager.yml")
    return folder


def run(args: argparse.Namespace) -> int:
    from verify.checks import selected
    from verify.context import VerifyContext
    from verify.grafana_api import GrafanaAPI, attach_grafana
    from verify.report import exit_code, render_table, strict_verdicts
    from verify.result_sets import write_result_set

    args.target = resolve_verify_target(args)
    from verify.tracker import access_from_args, attach_tracker

    tracker = access_from_args(args, args.target.tracker if args.target is not None else None)
    checks = selected(args.check)
    if not checks:
        raise HarnessError(f"no check matches {args.check}; list them with `pytest verify --collect-only -q`")
    reads_prometheus = any("prom" in chk.needs or "exported" in chk.needs for chk in checks)
    # Checks picked by --check (or the alert scenarios' own stacks) that read no Prometheus run
    # without one: `verify R --check server-errors-reach-tracker` needs only a ledger and a tracker.
    options = build_options(args, needs_prometheus=reads_prometheus or not (args.alert_scenarios or args.check))
    access = grafana_access(args, options.prometheus_url)
    ctx = VerifyContext(options)
    grafana = attach_grafana(ctx, GrafanaAPI.from_access(access)) if access else None
    pool = attach_live_inputs(ctx, args)
    attach_tracker(ctx, tracker)  # the error-tracker witness
    try:
        explicit = {chk.name for chk in checks} if args.check else set()
        results = strict_verdicts([chk.run(ctx) for chk in checks], args.strict, explicit)
    finally:
        if pool is not None:
            pool.close()
        if grafana is not None:
            grafana.close()
    from reports.snapshot import capture_quietly  # the series the report draws, while Prometheus is up

    print(capture_quietly(options.prometheus_url, options.run_dir), file=sys.stderr)
    differences = ctx.config_differences()
    inputs = {need: ctx.describe(need) for need in ("rules", "dashboard", "contract", "expectations", "prom")}
    inputs["grafana"] = access.url if access else "-"
    inputs["scrape_intervals"] = ctx.describe("scrape_intervals")
    if differences:
        inputs["differences"] = "; ".join(differences)
    given = {k: v for k, v in vars(args).items() if k not in ("func", "target", "grafana_password") and v}
    for secret in ("metrics_token", "grafana_token"):  # never written into a report
        given.pop(secret, None)
    folder = write_result_set(options.run_dir, results, inputs, options=given, target=target_label(args))
    junit = folder / "junit.xml"
    for line in differences:  # a file given explicitly that is not what the Prometheus runs
        print(f"differs from the running Prometheus: {line}")
    print(render_table(results))
    if not args.quiet:
        for result in results:
            if result.verdict in ("fail", "error"):
                print()
                print(result.render())
    print(f"\nJUnit: {junit}", file=sys.stderr)
    code = exit_code(results)
    failed = [r.name for r in results if r.verdict in ("fail", "error")]
    verdict = {0: "PASS", 1: "FAIL", 2: "ERROR"}[code]
    why = f"{len(failed)} failed ({', '.join(failed[:4])})" if failed else "no check failed"
    print(f"verify {verdict} {target_label(args)}: {why}")
    return code
