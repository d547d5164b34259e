"""The `codesync-load` console command: one entry point, one subcommand per capability.

    $ codesync-load twin --api-port 4000 --yjs-port 4001
    $ codesync-load demo

Each subcommand lives in its own module exposing `register(subparsers)`, which adds its
parser and sets `func` to a callable taking the parsed namespace and returning an exit code.
Expected failures are raised as HarnessError and printed as one line; Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import importlib
import sys

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
    try:
        return int(args.func(args) or 0)
    except HarnessError as err:
        print(f"codesync-load: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("codesync-load: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
