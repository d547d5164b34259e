"""The container engine the compose backend drives: a Docker engine, or podman without one.

    >>> engine = find_engine()            # HarnessError (one line) when neither can run here
    >>> engine.name, engine.env           # "podman", {"CONTAINERS_CONF": ..., ...}
    >>> with podman_service(engine, run_dir) as docker_host:   # Docker API for the docker SDK
    ...     DockerContainer(..., docker_client_kw={"base_url": docker_host})

Docker is used when its daemon answers and its CLI has the compose plugin; otherwise podman,
configured by scripts/containers.sh (the one place that knows podman's settings on these
machines: runc, ulimits, cgroupfs, storage outside the git tree). The choice can be forced
with CODESYNC_CONTAINER_ENGINE=docker|podman. Nothing here installs anything: a missing
engine is reported with the command that installs it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from codesync_load.errors import HarnessError
from codesync_load.stack.render import REPO_ROOT

CONTAINERS_SCRIPT = REPO_ROOT / "scripts" / "containers.sh"
ENGINE_VARIABLE = "CODESYNC_CONTAINER_ENGINE"


@dataclass
class Engine:
    """One container engine: its name, its CLI and the environment every call needs."""

    name: str  # "docker" or "podman"
    env: dict[str, str] = field(default_factory=dict)
    cache_dir: Path | None = None  # podman: where its storage and the build logs live

    def environ(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """os.environ with this engine's variables (and `extra`) laid over it."""
        return {**os.environ, **self.env, **(extra or {})}

    def run(self, *args: str, timeout: float = 120.0, check: bool = False) -> subprocess.CompletedProcess[str]:
        """The engine CLI with `args`; output captured as text. A hang ends as HarnessError."""
        try:
            result = subprocess.run(
                [self.name, *args],
                capture_output=True,
                text=True,
                env=self.environ(),
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise HarnessError(f"`{self.name} {' '.join(args[:3])}` did not answer within {timeout:g} s") from None
        if check and result.returncode != 0:
            raise HarnessError(f"`{self.name} {' '.join(args[:3])}` failed: {last_lines(result.stderr, 3)}")
        return result


def last_lines(text: str, count: int = 5) -> str:
    """The last non-empty lines of `text`, joined with ' | ' (for one-line errors)."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return " | ".join(lines[-count:]) or "(no output)"


def docker_problem() -> str | None:
    """None when a Docker daemon answers and `docker compose` exists, else why not (one phrase)."""
    if not shutil.which("docker"):
        return "the docker CLI is not installed"
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as err:  # the SDK raises several types for "no daemon"
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        return first[:160]
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return "the docker CLI has no compose plugin"
    return None


def podman_env() -> tuple[dict[str, str] | None, str | None]:
    """(podman's environment from scripts/containers.sh --env-only, None) or (None, why not)."""
    if not shutil.which("podman"):
        return None, "podman is not installed (install it with scripts/containers.sh)"
    result = subprocess.run(
        ["bash", str(CONTAINERS_SCRIPT), "--env-only"], capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        return None, last_lines(result.stderr, 1)
    env = {}
    for line in result.stdout.splitlines():
        if line.startswith("export ") and "=" in line:
            name, _, value = line[len("export ") :].partition("=")
            env[name] = value.strip("'\"")
    return env, None


def podman_problem(env: dict[str, str]) -> str | None:
    """None when podman can run a container's worth of setup here (`podman info`), else why not."""
    try:
        result = subprocess.run(
            ["podman", "info", "--format", "{{.Host.OCIRuntime.Name}}"],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "`podman info` did not answer within 60 s"
    if result.returncode != 0:
        return f"`podman info` failed: {last_lines(result.stderr, 1)}"
    return None


def find_engine(preferred: str | None = None) -> Engine:
    """Docker if its daemon answers (or is asked for), else podman; HarnessError naming both causes."""
    preferred = preferred or os.environ.get(ENGINE_VARIABLE) or None
    if preferred not in (None, "docker", "podman"):
        raise HarnessError(f"{ENGINE_VARIABLE}={preferred!r}: use docker or podman")
    docker_why = None
    if preferred in (None, "docker"):
        docker_why = docker_problem()
        if docker_why is None:
            return Engine("docker")
        if preferred == "docker":
            raise HarnessError(f"no Docker engine is reachable ({docker_why}); start one or use --backend local")
    env, podman_why = podman_env()
    if env is not None:
        podman_why = podman_problem(env)
        if podman_why is None:
            return Engine("podman", env, Path(env["CODESYNC_CONTAINERS_DIR"]))
    lead = "no container engine can run here: " + (f"Docker: {docker_why}; " if docker_why else "")
    raise HarnessError(f"{lead}podman: {podman_why}; use --backend local")


@contextlib.contextmanager
def podman_service(engine: Engine, run_dir: Path, timeout: float = 30.0) -> Iterator[str]:
    """`podman system service` on a socket in `run_dir` for the length of the block: the
    Docker-compatible API the docker SDK and testcontainers talk to. Yields its DOCKER_HOST;
    the service is stopped by PID afterwards, also on failure."""
    from codesync_load.processes import ManagedProcess

    if engine.name != "podman":
        raise HarnessError("podman_service needs podman; a Docker engine serves its API itself")
    run_dir.mkdir(parents=True, exist_ok=True)
    socket_path = run_dir / "podman.sock"
    socket_path.unlink(missing_ok=True)
    docker_host = f"unix://{socket_path}"
    proc = ManagedProcess.start(
        ["podman", "system", "service", "--time=0", docker_host],
        name="podman-service",
        log_path=run_dir / "podman-service.log",
        env=engine.environ(),
    )
    try:
        proc.wait_until(lambda: api_answers(docker_host), timeout=timeout, what=f"serving the API at {docker_host}")
        yield docker_host
    finally:
        proc.stop()
        socket_path.unlink(missing_ok=True)


def api_answers(docker_host: str) -> bool:
    """True when a Docker-compatible API answers a ping at `docker_host`."""
    import docker

    try:
        client = docker.DockerClient(base_url=docker_host, timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def require_api(docker_host: str) -> None:
    """HarnessError (one line) unless a Docker-compatible API answers at `docker_host`."""
    if not api_answers(docker_host):
        raise HarnessError(
            f"no Docker-compatible API answers at {docker_host}; start one "
            "(`podman system service --time=0 unix://PATH`, or the Docker daemon) and set DOCKER_HOST to it"
        )


def testcontainers_environment(docker_host: str) -> dict[str, str]:
    """What testcontainers needs to use `docker_host` on these machines: no Ryuk reaper (its
    image would come from a registry; we remove what we start ourselves) and the host's own
    address for published ports (a /.dockerenv file here would otherwise mislead it)."""
    return {
        "DOCKER_HOST": docker_host,
        "TESTCONTAINERS_RYUK_DISABLED": "true",
        "TESTCONTAINERS_CONNECTION_MODE": "docker_host",
    }
