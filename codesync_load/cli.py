"""The `codesync-load` console command: one entry point, one subcommand per capability.

    $ codesync-load twin --api-port 4000 --yjs-port 4001
    $ codesync-load demo

Each subcommand lives in its own module exposing `register(subparsers)`, which adds its
parser and sets `func` to a callable taking the parsed namespace and returning an exit code.
Expected failures are raised as HarnessError and printed as one line; Ctrl-C exits 130.
SIGTERM and SIGHUP are turned into the same interruption (exit 143 / 129), so that every
`finally` block runs: a gate or run killed by CI's timeout stops the stack it started, by PID,
instead of leaving Prometheus, twins and exporters running (each lives in its own session,
out of reach of a signal sent to ours).
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from types import FrameType

from codesync_load.errors import HarnessError

# Modules that contribute subcommands, in the order `--help` lists them.
SUBCOMMAND_MODULES = (
    "codesync_load.commands.demo",
    "codesync_load.commands.run",
    "codesync_load.commands.stack",
    "codesync_load.commands.verify",
    "codesync_load.commands.gate",
    "codesync_load.commands.report",
    "codesync_load.commands.capacity",
    "codesync_load.commands.baseline",
    "twin.cli",
)


class Terminated(KeyboardInterrupt):
    """A SIGTERM or SIGHUP, raised where the main thread is so that clean-up runs as on Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _terminate(signum: int, frame: FrameType | None) -> None:
    # A second signal while cleaning up must not abort the clean-up: only SIGKILL cuts it short.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    raise Terminated(signum)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codesync-load",
        description="Load-test CodeSync and verify that its telemetry tells the truth.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module_name in SUBCOMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    try:
        return int(args.func(args) or 0)
    except HarnessError as err:
        print(f"codesync-load: error: {err}", file=sys.stderr)
        return err.exit_code
    except Terminated as stop:
        print(
            f"codesync-load: stopped by {signal.Signals(stop.signum).name}; what it started is stopped", file=sys.stderr
        )
        return 128 + stop.signum
    except KeyboardInterrupt:
        print("codesync-load: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
