"""`codesync-load twin`: run the CodeSync twin in the foreground.

    $ codesync-load twin --api-port 4000 --yjs-port 4001 --fault slow-route=250
    $ codesync-load twin --list-faults

Storage and state follow the deployment's variables: DATABASE_URL (PostgreSQL, else an
SQLite file), REDIS_URL (else in-process), METRICS_TOKEN (else /metrics is open).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from codesync_load.errors import HarnessError
from twin.config import RateLimits, TwinConfig
from twin.faults import describe_faults, parse_faults


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "twin",
        help="run the CodeSync twin (API + Socket.IO + Yjs + /metrics)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--api-port", type=int, default=4000, help="API + Socket.IO port; 0 picks a free one")
    parser.add_argument("--yjs-port", type=int, default=4001, help="Yjs WebSocket port; 0 picks a free one")
    parser.add_argument("--fault", action="append", metavar="NAME[=PARAM]", help="switch a fault on (repeatable)")
    parser.add_argument("--list-faults", action="store_true", help="list the faults and exit")
    parser.add_argument("--sqlite-path", type=Path, default=None, help="SQLite file when DATABASE_URL is unset")
    parser.add_argument("--redis-prefix", default=None, help="Redis key prefix (default codesync:)")
    parser.add_argument("--metrics-token", default=None, help="bearer token for /metrics (default $METRICS_TOKEN)")
    parser.add_argument("--bcrypt-rounds", type=int, default=None, help="bcrypt cost (default 12, as CodeSync)")
    parser.add_argument(
        "--rate-window", type=float, default=None, help="rate-limit window in seconds (default 60, as CodeSync)"
    )
    parser.add_argument(
        "--socketio-refusal",
        choices=("disconnect", "connect_error"),
        default="disconnect",
        help="how an over-limit Socket.IO connection is refused (default disconnect: accepted, then "
        "disconnected at once, as CodeSync does)",
    )
    parser.add_argument(
        "--yjs-load-delay-ms",
        type=float,
        default=0.0,
        help="delay before a Yjs document's stored state is applied (the load is asynchronous anyway, as in "
        "CodeSync; default 0)",
    )
    parser.add_argument(
        "--service-model",
        default=None,
        metavar="usl:sigma=S,kappa=K,base_ms=B",
        help="delay /api requests along a known USL curve (checks `codesync-load capacity`; off by default)",
    )
    parser.add_argument(
        "--health-checks-db",
        action="store_true",
        help="a fixed CodeSync: /health answers 503 when the database does not answer (default: 200 without "
        "checking it, as CodeSync does; the uptime check reports that as fault health-ignores-db)",
    )
    parser.add_argument("--ready-file", type=Path, default=None, help="write a JSON record here once listening")
    parser.add_argument("--log-level", default="WARNING", help="Python log level (default WARNING)")
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> TwinConfig:
    faults = parse_faults(args.fault)
    for name, port in (("--api-port", args.api_port), ("--yjs-port", args.yjs_port)):
        if not 0 <= port <= 65535:
            raise HarnessError(f"{name} {port} is not a TCP port; use 0-65535 (0 picks a free port)")
    if args.bcrypt_rounds is not None and not 4 <= args.bcrypt_rounds <= 31:
        raise HarnessError(f"--bcrypt-rounds {args.bcrypt_rounds} is out of range; bcrypt takes 4-31")
    limits = RateLimits(window_s=args.rate_window) if args.rate_window else None
    if limits is not None and limits.window_s <= 0:
        raise HarnessError("--rate-window must be a positive number of seconds")
    if args.yjs_load_delay_ms < 0:
        raise HarnessError("--yjs-load-delay-ms must be 0 or more milliseconds")
    return TwinConfig.from_env(
        socketio_refusal=args.socketio_refusal,
        yjs_load_delay_s=args.yjs_load_delay_ms / 1000.0 or None,
        host=args.host,
        api_port=args.api_port,
        yjs_port=args.yjs_port,
        faults=faults,
        sqlite_path=args.sqlite_path,
        redis_prefix=args.redis_prefix,
        metrics_token=args.metrics_token,
        bcrypt_rounds=args.bcrypt_rounds,
        rate_limits=limits,
        ready_file=args.ready_file,
        health_checks_db=args.health_checks_db and not faults.active("health-ignores-db"),
        service_model=_service_model(args),
    )


def _service_model(args: argparse.Namespace) -> object | None:
    from twin.service_model import parse_service_model

    return parse_service_model(args.service_model) if getattr(args, "service_model", None) else None


def run(args: argparse.Namespace) -> int:
    if args.list_faults:
        print(describe_faults())
        return 0
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = config_from_args(args)
    from twin.server import serve

    asyncio.run(serve(config))
    return 0
