"""`codesync-load demo`: the main job on the embedded default target, what `./run` does.

    $ codesync-load demo                  # stack + load + verification + gates + report
    $ codesync-load demo --fault ws-gauge-leak     # the same against a broken twin: exit 1

The whole harness in one command on the twin: a local stack (the twin, Prometheus,
Alertmanager and the node, PostgreSQL and Redis exporters on free loopback ports), the
`ci` load profile, the verification suite, the gates of gates/ci.toml and the HTML/Markdown/
JSON report; everything it started is stopped at the end, also on failure and Ctrl-C.
It is `codesync-load gate --profile ci` with the stack's endpoints printed and the
password-hashing cost lowered (bcrypt is not what the demo measures).
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="the main job on the embedded twin (what ./run does): stack, load, verify, gates, report"
    )
    parser.add_argument("--fault", action="append", default=[], metavar="NAME[=PARAM]", help="twin fault (repeatable)")
    parser.add_argument("--profile", default="ci", help="load profile with a gate file of the same name (default ci)")
    parser.add_argument("--bcrypt-rounds", type=int, default=4, help="bcrypt cost of the twin (CodeSync uses 12)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from codesync_load.cli import build_parser

    # --strict: the main job never reports a pass over a check that applies but could not judge
    gate_argv = ["gate", "--twin", "--profile", args.profile, "--bcrypt-rounds", str(args.bcrypt_rounds), "--strict"]
    for fault in args.fault:
        gate_argv += ["--fault", fault]
    gate_args = build_parser().parse_args(gate_argv)
    return int(gate_args.func(gate_args) or 0)
