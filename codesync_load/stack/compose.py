"""The stack as containers: testcontainers' DockerCompose on docker-compose.test.yml.

    >>> stack = ComposeStack(metrics_token="...")
    >>> stack.up()            # HarnessError at once when no Docker engine is reachable
    >>> stack.prometheus_url  # the published port of the prometheus service

The compose file (owned by monitoring/) names the services; the defaults below follow the
hostnames monitoring/prometheus.yml scrapes (codesync-api:4000, codesync-yjs:4001,
prometheus:9090, alertmanager:9093). Containers are stopped and removed by `down()`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

from codesync_load.errors import HarnessError
from codesync_load.stack import promapi
from codesync_load.stack.base import Stack
from codesync_load.stack.render import REPO_ROOT

COMPOSE_FILE = "docker-compose.test.yml"
# component -> (service, container port, URL scheme)
DEFAULT_SERVICES = {
    "api": ("codesync-api", 4000, "http"),
    "yjs": ("codesync-yjs", 4001, "ws"),
    "prometheus": ("prometheus", 9090, "http"),
    "alertmanager": ("alertmanager", 9093, "http"),
}


def docker_engine_problem() -> str | None:
    """None when a Docker engine answers a ping, else why not (one phrase)."""
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
    return None


def find_compose_file(path: str | Path | None = None) -> Path:
    candidates = [Path(path)] if path else [REPO_ROOT / COMPOSE_FILE, REPO_ROOT / "monitoring" / COMPOSE_FILE]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise HarnessError(f"{COMPOSE_FILE} not found (looked at {', '.join(map(str, candidates))}); pass --compose-file")


class ComposeStack(Stack):
    """CodeSync and its monitoring in containers, addressed through their published ports."""

    backend = "compose"

    def __init__(
        self,
        *,
        compose_file: str | Path | None = None,
        metrics_token: str | None = None,
        services: dict[str, tuple[str, int, str]] | None = None,
        ready_timeout: float = 180.0,
        **_ignored: object,
    ) -> None:
        super().__init__()
        self.compose_file = compose_file
        self._token = metrics_token or os.environ.get("METRICS_TOKEN") or None
        self.services = {**DEFAULT_SERVICES, **(services or {})}
        self.ready_timeout = ready_timeout
        self._compose = None

    def up(self) -> ComposeStack:
        problem = docker_engine_problem()
        if problem:
            raise HarnessError(f"no Docker engine is reachable ({problem}); use --backend local")
        path = find_compose_file(self.compose_file)
        from testcontainers.compose import DockerCompose

        if self._token:
            os.environ["METRICS_TOKEN"] = self._token
        self._compose = DockerCompose(context=str(path.parent), compose_file_name=path.name, wait=True)
        try:
            self._compose.start()
            for name, (service, port, scheme) in self.services.items():
                host, published = self._compose.get_service_host_and_port(service, port)
                self._urls[name] = f"{scheme}://{host}:{published}"
                self._components[name] = {"url": self._urls[name], "pid": None, "service": service}
            self._compose.wait_for(f"{self.prometheus_url}/-/ready")
            self._wait_targets_up()
        except BaseException:
            self.down()
            raise
        return self

    def _wait_targets_up(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        waiting: dict[str, str] = {"all": "not asked yet"}
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError, KeyError):
                waiting = promapi.targets_not_up(self.prometheus_url)
                if not waiting and promapi.alertmanager_ready(self.alertmanager_url):
                    return
            time.sleep(1.0)
        detail = "; ".join(f"job {job}: {error}" for job, error in sorted(waiting.items()))
        raise HarnessError(
            f"Prometheus targets not up within {self.ready_timeout:g} s ({detail}); "
            "see `docker compose logs` for the service behind the job"
        )

    def ready(self) -> bool:
        try:
            return not promapi.targets_not_up(self.prometheus_url) and promapi.alertmanager_ready(self.alertmanager_url)
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def down(self) -> None:
        if self._compose is not None:
            with contextlib.suppress(Exception):
                self._compose.stop(down=True)
            self._compose = None
