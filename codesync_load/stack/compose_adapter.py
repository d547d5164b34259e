"""`docker compose` for testcontainers, on podman: the adapter its DockerCompose runs.

testcontainers' DockerCompose shells out to a Compose v2 CLI (`<binary> compose -f F ... up
--detach`, `ps --format json`, `logs S`, `down --volumes`, `config --format json`), which
cannot be installed on these machines. Its `docker_command_path` may name any program, so the
compose launcher points it at a small script that runs this module, which answers each call
with podman-compose (for up/down/logs/config/exec) or podman itself (for ps, in Compose v2's
JSON shape: one object per line with Name, Service, State, Publishers).

    python -m codesync_load.stack.compose_adapter compose -f docker-compose.test.yml ps --format json

COMPOSE_PROJECT_NAME must be set (the launcher sets it): podman-compose reads it too, and ps
selects containers by the project's label. `up --wait` is answered as `up -d`: without
systemd podman never runs healthchecks, and the launcher checks readiness itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROJECT_LABEL = "io.podman.compose.project"
SERVICE_LABEL = "io.podman.compose.service"
GLOBAL_WITH_VALUE = {"-f", "--file", "--profile", "--env-file", "-p", "--project-name"}


def split_globals(args: list[str]) -> tuple[list[str], str, list[str]]:
    """(global options, subcommand, its arguments) of a `compose ...` argument list."""
    globals_: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in GLOBAL_WITH_VALUE and index + 1 < len(args):
            globals_ += [arg, args[index + 1]]
            index += 2
        elif arg.startswith("-"):
            globals_.append(arg)
            index += 1
        else:
            return globals_, arg, args[index + 1 :]
    raise SystemExit("compose adapter: no compose subcommand given")


def podman_compose(globals_: list[str], command: str, args: list[str]) -> int:
    """Run podman-compose with this interpreter, passing its output through."""
    return subprocess.call([sys.executable, "-m", "podman_compose", *globals_, command, *args])


def translate(command: str, args: list[str]) -> list[str]:
    """A Compose v2 subcommand's arguments as podman-compose takes them."""
    if command == "up":
        kept = [arg for arg in args if arg not in ("--wait", "--detach", "-d", "--quiet-build", "--quiet-pull")]
        return ["-d", *kept]
    if command == "down":
        return ["-t", "5", *("-v" if arg == "--volumes" else arg for arg in args)]
    if command == "config":
        return [arg for arg in args if arg not in ("--format", "json")]
    return args


def compose_ps(include_all: bool) -> int:
    """`ps --format json`: the project's containers in Compose v2's JSON-lines shape."""
    project = os.environ.get("COMPOSE_PROJECT_NAME")
    if not project:
        print("compose adapter: COMPOSE_PROJECT_NAME is not set", file=sys.stderr)
        return 2
    argv = ["podman", "ps", "--format", "json", "--filter", f"label={PROJECT_LABEL}={project}"]
    if include_all:
        argv.append("-a")
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        return result.returncode
    for container in json.loads(result.stdout or "[]"):
        print(json.dumps(to_compose_v2(container, project)))
    return 0


def to_compose_v2(container: dict, project: str) -> dict:
    """One `podman ps --format json` entry as `docker compose ps --format json` prints it."""
    labels = container.get("Labels") or {}
    publishers = [
        {
            "URL": port.get("host_ip") or "0.0.0.0",
            "TargetPort": port.get("container_port"),
            "PublishedPort": port.get("host_port"),
            "Protocol": port.get("protocol", "tcp"),
        }
        for port in container.get("Ports") or []
    ]
    return {
        "ID": container.get("Id"),
        "Name": (container.get("Names") or [""])[0],
        "Command": " ".join(container.get("Command") or []),
        "Project": project,
        "Service": labels.get(SERVICE_LABEL),
        "State": container.get("State"),
        "Health": "",
        "ExitCode": container.get("ExitCode", 0),
        "Publishers": publishers,
    }


def compose_config(globals_: list[str], args: list[str], as_json: bool) -> int:
    """`config [--format json]`: podman-compose's merged YAML, as JSON when asked."""
    argv = [sys.executable, "-m", "podman_compose", *globals_, "config", *translate("config", args)]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    sys.stderr.write(result.stderr)
    if result.returncode != 0 or not as_json:
        sys.stdout.write(result.stdout)
        return result.returncode
    print(json.dumps(load_rendered(result.stdout)))
    return 0


def load_rendered(text: str) -> dict:
    """podman-compose's rendered YAML; compose's own tags (an x- block may keep `!reset`) read
    as the plain value they carry."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def plain(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> object:
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node)
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node)
        return loader.construct_scalar(node)

    Loader.add_multi_constructor("!", plain)
    return yaml.load(text, Loader=Loader)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "compose":
        print("usage: compose_adapter compose [-f FILE ...] SUBCOMMAND ...", file=sys.stderr)
        return 2
    globals_, command, rest = split_globals(args[1:])
    if command == "ps":
        return compose_ps(include_all="-a" in rest or "--all" in rest)
    if command == "config":
        return compose_config(globals_, rest, as_json="json" in rest)
    return podman_compose(globals_, command, translate(command, rest))


if __name__ == "__main__":
    sys.exit(main())
