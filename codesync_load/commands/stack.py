"""`codesync-load stack up|down|status`: the monitoring stack as a background service.

    $ codesync-load stack up --compress 30 --scrape-interval 2s --fault error-burst=1.0
    $ codesync-load stack up --api-url http://127.0.0.1:4000 --yjs-url ws://127.0.0.1:4001 \
          --metrics-token "$METRICS_TOKEN" --monitoring ../CodeSync/monitoring   # around your CodeSync
    $ codesync-load stack status --json
    $ codesync-load stack down

`up` returns once every Prometheus target is up and leaves everything running, recorded in
the state file (--state-dir, else $CODESYNC_STATE_DIR, else ~/.local/state/codesync-load);
`down` stops every recorded PID; `status` says what runs. Ctrl-C or SIGTERM during `up`
stops whatever had started.

With --api-url and --yjs-url (local backend) no twin starts: Prometheus, Alertmanager, the
webhook receiver and the exporters run around the CodeSync at those URLs (node, PostgreSQL and
Redis exporters when it runs on this machine, or --database-url/--redis-url are given),
scraping every 1 s unless --scrape-interval says otherwise. --monitoring DIR runs that
folder's prometheus.yml (scrape addresses rewritten to the URLs: each rewrite is printed),
rule files and alertmanager.yml. After the first scrape it prints every target's health with
Prometheus' own last error; a target that is down is reported, not fatal.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys

from codesync_load.errors import HarnessError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stack",
        help="start, stop or inspect the monitoring stack (twin + Prometheus + Alertmanager + exporters)",
        description=__doc__.split("\n\n")[0],
    )
    actions = parser.add_subparsers(dest="stack_action", metavar="ACTION")
    actions.required = True

    up = actions.add_parser("up", help="start the stack and return once every target is up")
    up.add_argument("--backend", choices=("local", "compose", "external"), default="local")
    up.add_argument("--api-url", help="CodeSync API base URL (local: monitor it instead of starting a twin)")
    up.add_argument("--yjs-url", help="its Yjs WebSocket URL (with --api-url)")
    up.add_argument("--prometheus-url", help="external: Prometheus base URL")
    up.add_argument("--alertmanager-url", help="external: Alertmanager base URL")
    up.add_argument("--metrics-token", help="bearer token for /metrics (local: generated when omitted)")
    up.add_argument("--fault", action="append", default=[], metavar="NAME[=PARAM]", help="twin fault (repeatable)")
    up.add_argument("--compress", type=float, default=1.0, metavar="FACTOR", help="divide rule windows by FACTOR")
    up.add_argument("--scrape-interval", help="scrape and evaluation interval, e.g. 2s (default: as prometheus.yml)")
    up.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or None,
        help="local: PostgreSQL URL for the twin (default $DATABASE_URL, else its SQLite file)",
    )
    up.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL") or None,
        help="local: Redis URL for the twin (default $REDIS_URL, else in-process state)",
    )
    up.add_argument("--redis-prefix", help="local: the twin's Redis key prefix (default codesync:)")
    up.add_argument(
        "--port", action="append", default=[], metavar="NAME=PORT", help="local: fixed port, e.g. prometheus=9090"
    )
    up.add_argument(
        "--monitoring",
        "--monitoring-dir",
        dest="monitoring_dir",
        help="local: your monitoring folder (prometheus.yml, its rule files, alertmanager.yml); default monitoring/",
    )
    up.add_argument("--ready-timeout", type=float, default=90.0, help="seconds to wait for every target (default 90)")
    up.add_argument("--compose-file", help="compose: the compose file (default docker-compose.test.yml)")
    up.add_argument("--json", action="store_true", help="print the stack's status as JSON once ready")
    _state_dir(up)
    up.set_defaults(func=run_up)

    down = actions.add_parser("down", help="stop every process of the recorded stack")
    _state_dir(down)
    down.set_defaults(func=run_down)

    status = actions.add_parser("status", help="print every component's URL, PID and whether it is alive")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    _state_dir(status)
    status.set_defaults(func=run_status)


def _state_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir", help="where the state file lives (default $CODESYNC_STATE_DIR, else ~/.local/state)"
    )


def _parse_ports(values: list[str]) -> dict[str, int]:
    ports = {}
    for value in values:
        name, sep, port = value.partition("=")
        if not sep or not port.isdigit():
            raise HarnessError(f"--port {value!r} is not NAME=PORT; e.g. --port prometheus=9090")
        ports[name] = int(port)
    return ports


def _options(args: argparse.Namespace) -> dict:
    if args.backend == "external":
        local_only = [
            flag
            for flag, value in (
                ("--fault", args.fault),
                ("--compress", args.compress != 1.0),
                ("--scrape-interval", args.scrape_interval),
                ("--port", args.port),
                ("--monitoring-dir", args.monitoring_dir),
            )
            if value
        ]
        if local_only:
            raise HarnessError(f"{', '.join(local_only)} only apply to --backend local; drop them or use it")
    elif args.backend == "compose" and args.monitoring_dir:
        raise HarnessError("--monitoring-dir only applies to --backend local; compose renders monitoring/ itself")
    if args.backend == "external":
        return {
            "api_url": args.api_url,
            "yjs_url": args.yjs_url,
            "prometheus_url": args.prometheus_url,
            "alertmanager_url": args.alertmanager_url,
            "metrics_token": args.metrics_token,
            "state_dir": args.state_dir,
        }
    given = [
        flag
        for flag, value in (("--prometheus-url", args.prometheus_url), ("--alertmanager-url", args.alertmanager_url))
        if value
    ]
    if given:
        raise HarnessError(
            f"{', '.join(given)} only apply to --backend external (a Prometheus you run); add it or drop them"
        )
    if args.backend == "compose" and (args.api_url or args.yjs_url):
        raise HarnessError("--api-url/--yjs-url do not apply to --backend compose; drop them")
    if args.backend == "compose":
        return {
            "compose_file": args.compose_file,
            "metrics_token": args.metrics_token,
            "state_dir": args.state_dir,
            "faults": args.fault,
            "compress": args.compress,
            "scrape_interval": args.scrape_interval,
            "ports": _parse_ports(args.port),
            "ready_timeout": args.ready_timeout,
        }
    return {
        "state_dir": args.state_dir,
        "faults": args.fault,
        "compress": args.compress,
        "scrape_interval": args.scrape_interval,
        "database_url": args.database_url,
        "redis_url": args.redis_url,
        "redis_prefix": args.redis_prefix,
        "metrics_token": args.metrics_token,
        "ports": _parse_ports(args.port),
        "monitoring_dir": args.monitoring_dir,
        "ready_timeout": args.ready_timeout,
        "api_url": args.api_url,
        "yjs_url": args.yjs_url,
    }


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def print_status(status: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(status, indent=2))
        return
    print(f"backend {status['backend']}")
    for name, comp in status["components"].items():
        alive = {True: "alive", False: "DEAD", None: "-"}[comp.get("alive")]
        pid = comp.get("pid") or "-"
        print(f"  {name:<18} {alive:<6} pid {pid!s:<8} {comp.get('url') or ''}")
    for note in status.get("notes") or []:
        print(f"  note: {note}")


def run_up(args: argparse.Namespace) -> int:
    from codesync_load.stack import open_stack

    stack = open_stack(args.backend, **_options(args))
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        stack.up()
        stack.detach()
    finally:
        signal.signal(signal.SIGTERM, previous)
    print_status(stack.status(), args.json)
    if not args.json:
        print_around(stack)
        print("stop it with: codesync-load stack down" + (f" --state-dir {args.state_dir}" if args.state_dir else ""))
    return 0


def print_around(stack: object) -> None:
    """For monitoring around a CodeSync: what was rewritten in its folder, then each target's health."""
    target = getattr(stack, "target_urls", None)
    if not target:
        return
    print(f"monitoring around api {target['api']}, yjs {target['yjs']} (no twin started)")
    print(f"monitoring folder {stack.monitoring_dir}; rewritten:")  # type: ignore[attr-defined]
    for line in getattr(stack, "rewritten", []):
        print(f"  {line}")
    print("targets after the first scrape:")
    for target_health in getattr(stack, "health", []) or [{"job": "all", "health": "not scraped yet"}]:
        error = target_health.get("lastError")
        state = target_health["health"]
        print(f"  {target_health['job']} {state}" + (f": {error}" if error else ""))
    tracker = getattr(stack, "tracker_record", None)
    if tracker:  # the error-tracker witness hears only what CodeSync is told to send it
        print(f"error tracker (Bugsink) at {tracker['url']}; start CodeSync's backend with:")
        print(f"  SENTRY_DSN={tracker['dsn']}")


def run_down(args: argparse.Namespace) -> int:
    from codesync_load.stack import recorded_stack

    stack = recorded_stack(args.state_dir)
    if stack is None:
        print("no stack is recorded; nothing to stop")
        return 0
    names = ", ".join(stack.components) or "nothing"
    stack.down()
    if stack.backend == "external":
        print(f"forgot the external stack ({names}); nothing was stopped: those services are not the harness's")
    else:
        print(f"stopped {stack.backend} stack ({names})")
    return 0


def run_status(args: argparse.Namespace) -> int:
    from codesync_load.stack import recorded_stack

    stack = recorded_stack(args.state_dir)
    if stack is None:
        if args.json:
            print(json.dumps({"backend": None, "components": {}}))
        else:
            print("no stack is recorded; start one with: codesync-load stack up")
        return 1
    status = stack.status()
    print_status(status, args.json)
    dead = [name for name, comp in status["components"].items() if comp.get("alive") is False]
    if dead:
        with contextlib.suppress(Exception):
            print(f"dead: {', '.join(dead)}; run `codesync-load stack down` and up again", file=sys.stderr)
        return 1
    return 0
