"""The stack as containers: testcontainers' DockerCompose on docker-compose.test.yml.

    >>> stack = ComposeStack(metrics_token="...")
    >>> stack.up()            # HarnessError at once when no Docker engine is reachable
    >>> stack.prometheus_url  # the published port of the prometheus service
    >>> stack.grafana         # {"url": ..., "user": "admin", "password": ...} for the verifier

The compose file (owned by monitoring/) names the services; the defaults below follow the
hostnames monitoring/prometheus.yml scrapes (codesync-api:4000, codesync-yjs:4001,
prometheus:9090, alertmanager:9093) and its Grafana (grafana:3000, admin password
$GRAFANA_ADMIN_PASSWORD or the file's default). Once up, the stack is recorded in the state
file like the other backends, with the Grafana login, so `codesync-load verify` can ask
Grafana for the dashboard. Containers are stopped and removed by `down()`.
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
from codesync_load.stack.state import read_state, remove_state, resolve_state_dir, write_state

COMPOSE_FILE = "docker-compose.test.yml"
# component -> (service, container port, URL scheme)
DEFAULT_SERVICES = {
    "api": ("codesync-api", 4000, "http"),
    "yjs": ("codesync-yjs", 4001, "ws"),
    "prometheus": ("prometheus", 9090, "http"),
    "alertmanager": ("alertmanager", 9093, "http"),
    "grafana": ("grafana", 3000, "http"),
}
# The compose file's Grafana login: user admin, password ${GRAFANA_ADMIN_PASSWORD:-...}.
GRAFANA_USER = "admin"
GRAFANA_DEFAULT_PASSWORD = "codesync-test-grafana"


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
        state_dir: str | Path | None = None,
        **_ignored: object,
    ) -> None:
        super().__init__()
        self.compose_file = compose_file
        self._token = metrics_token or os.environ.get("METRICS_TOKEN") or None
        self.services = {**DEFAULT_SERVICES, **(services or {})}
        self.ready_timeout = ready_timeout
        self.state_dir = resolve_state_dir(state_dir)
        self._compose = None
        self._recorded = False
        self._grafana_password: str | None = None  # as recorded, for a stack read back from state

    @property
    def grafana(self) -> dict[str, str] | None:
        """The Grafana of the stack and its admin login (None before `up()`)."""
        url = self._urls.get("grafana")
        if not url:
            return None
        password = self._grafana_password or os.environ.get("GRAFANA_ADMIN_PASSWORD") or GRAFANA_DEFAULT_PASSWORD
        return {"url": url, "user": GRAFANA_USER, "password": password}

    @classmethod
    def from_record(cls, record: dict) -> ComposeStack:
        """The stack a previous `stack up --backend compose` left running, for `down`, `status`, `verify`."""
        stack = cls(compose_file=record.get("compose_file"), state_dir=record.get("state_dir"))
        stack._adopt_recorded_endpoints(record)
        stack._components = dict(record.get("components") or {})
        for name, comp in stack._components.items():
            stack._urls.setdefault(name, comp.get("url"))
        stack._grafana_password = (record.get("grafana") or {}).get("password")
        stack._recorded = True
        return stack

    def record(self) -> dict:
        """What the state file keeps of this stack (readable by the owner only: it holds logins)."""
        return {
            "backend": self.backend,
            "state_dir": str(self.state_dir),
            "compose_file": str(find_compose_file(self.compose_file)),
            "api_url": self.api_url,
            "yjs_url": self.yjs_url,
            "prometheus_url": self.prometheus_url,
            "alertmanager_url": self.alertmanager_url,
            "metrics_token": self._token,
            "components": self._components,
            "grafana": self.grafana,
        }

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
            write_state(self.state_dir, self.record())
            self._recorded = True
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
        if self._compose is None and self._recorded and not docker_engine_problem():
            from testcontainers.compose import DockerCompose

            path = find_compose_file(self.compose_file)
            self._compose = DockerCompose(context=str(path.parent), compose_file_name=path.name)
        if self._compose is not None:
            with contextlib.suppress(Exception):
                self._compose.stop(down=True)
            self._compose = None
        if self._recorded:
            record = read_state(self.state_dir)
            if record is None or record.get("backend") == self.backend:
                remove_state(self.state_dir)
            self._recorded = False
