"""The stack as containers: docker-compose.test.yml, started through testcontainers' DockerCompose.

    >>> stack = ComposeStack(scrape_interval="2s", compress=30)   # the engine is found at up()
    >>> stack.up()            # HarnessError (one line, nothing left running) on any failure
    >>> stack.prometheus_url, stack.api_url, stack.alert_log
    >>> stack.down()          # every container of the project removed, the webhook stopped

Two modes, one launcher:

- **local images** (the default on podman, the only way without a registry): the compose
  file plus docker-compose.local.yml, images built here from containers/*.Containerfile
  (codesync_load/stack/images.py), every service on the host's network, listening on a free
  127.0.0.1 port the launcher picked. Prometheus and Alertmanager get configs rendered from
  monitoring/ as for the local stack (scrape interval, compression, the harness's webhook),
  so the gate, the verifier and the alert scenarios work unchanged. No Grafana, no MinIO.
- **upstream images** (the default on Docker): the compose file as users run it, ports
  published on 127.0.0.1 as it says, monitoring/ mounted as it is.

On podman, DockerCompose's `docker_command_path` points at compose_adapter.py (podman-compose
under Compose v2's CLI); on Docker at the docker CLI itself. Either way the launcher starts the
services in stages (databases, API, Yjs server, exporters and Alertmanager, Prometheus) and
waits for each with its own probe from the host (a query, an HTTP answer, a TCP accept): no
engine healthcheck is needed, which matters on podman without systemd. A service that exits
or never answers ends `up()` with one line naming it and the last lines of its log, after
everything already started was removed. With CODESYNC_SRC (or codesync_src=) the API and the
Yjs server are the real CodeSync built from that checkout (docker-compose.codesync.yml).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shlex
import time
from collections.abc import Callable
from pathlib import Path

from codesync_load.errors import HarnessError
from codesync_load.stack import blackbox, promapi
from codesync_load.stack.base import Stack
from codesync_load.stack.engine import Engine, find_engine, last_lines
from codesync_load.stack.ports import HOST, accepts_connections, pick_ports
from codesync_load.stack.render import MONITORING_DIR, REPO_ROOT, render_configs
from codesync_load.stack.state import read_state, remove_state, resolve_state_dir, write_state
from codesync_load.stack.tracker import TWIN_RELEASE, TrackerSpec, provision_script, provisioned, tracker_ready

COMPOSE_FILE = "docker-compose.test.yml"
LOCAL_OVERRIDE = "docker-compose.local.yml"
CODESYNC_OVERRIDE = "docker-compose.codesync.yml"
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
# The compose file's test passwords (its ${VAR:-default}s); the launcher passes them on.
POSTGRES_PASSWORD = "codesync-test-pg-password"
REDIS_PASSWORD = "codesync-test-redis-password"
# Local-images mode: port name -> the variable docker-compose.local.yml reads.
PORT_VARIABLES = {
    "api": "CODESYNC_API_PORT",
    "yjs": "CODESYNC_YJS_PORT",
    "api-spare": "CODESYNC_API_SPARE_PORT",
    "yjs-spare": "CODESYNC_YJS_SPARE_PORT",
    "postgres": "CODESYNC_POSTGRES_PORT",
    "redis": "CODESYNC_REDIS_PORT",
    "node-exporter": "CODESYNC_NODE_EXPORTER_PORT",
    "postgres-exporter": "CODESYNC_POSTGRES_EXPORTER_PORT",
    "redis-exporter": "CODESYNC_REDIS_EXPORTER_PORT",
    "blackbox": "CODESYNC_BLACKBOX_PORT",
    "tracker": "CODESYNC_TRACKER_PORT",
    "alertmanager": "CODESYNC_ALERTMANAGER_PORT",
    "prometheus": "CODESYNC_PROMETHEUS_PORT",
}
# The webhook (the harness's own part) runs on the host.
PORT_NAMES = ("webhook", *PORT_VARIABLES)
# Start order: each stage is up and answering before the next starts. CodeSync's two
# services need the databases at start, and the API goes first (both create the schema with
# the twin); everything else retries by itself, so it starts with the databases. Three
# stages, not seven: each compose call costs seconds (tens under load) on podman.
STAGES = (
    (
        "postgres",
        "redis",
        "node-exporter",
        "postgres-exporter",
        "redis-exporter",
        "blackbox-exporter",
        "alertmanager",
        "prometheus",
        "bugsink",
    ),
    ("codesync-api",),
    ("codesync-yjs",),
)
# Upstream mode: component -> (service, container port, URL scheme), as docker-compose.test.yml publishes them.
UPSTREAM_SERVICES = {
    "api": ("codesync-api", 4000, "http"),
    "yjs": ("codesync-yjs", 4001, "ws"),
    "prometheus": ("prometheus", 9090, "http"),
    "alertmanager": ("alertmanager", 9093, "http"),
    "grafana": ("grafana", 3000, "http"),
}
UPSTREAM_PUBLISHED = {
    "codesync-api": 4000,
    "codesync-yjs": 4001,
    "prometheus": 9090,
    "alertmanager": 9093,
    "grafana": 3001,
    "bugsink": 8000,
}
# Where CodeSync's containers send error events in upstream mode: the service on the compose network.
UPSTREAM_TRACKER_NETLOC = "bugsink:8000"
GRAFANA_USER = "admin"
GRAFANA_DEFAULT_PASSWORD = "codesync-test-grafana"


def docker_engine_problem() -> str | None:
    """None when a Docker engine answers a ping, else why not (kept for callers and tests)."""
    from codesync_load.stack.engine import docker_problem

    return docker_problem()


def find_compose_file(path: str | Path | None = None) -> Path:
    candidates = [Path(path)] if path else [REPO_ROOT / COMPOSE_FILE, REPO_ROOT / "monitoring" / COMPOSE_FILE]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise HarnessError(f"{COMPOSE_FILE} not found (looked at {', '.join(map(str, candidates))}); pass --compose-file")


def codesync_source(value: str | Path | None) -> Path | None:
    """The CodeSync checkout to build (codesync_src= or $CODESYNC_SRC), checked; None for the twin."""
    raw = value or os.environ.get("CODESYNC_SRC") or None
    if raw is None:
        return None
    path = Path(raw).expanduser().resolve()
    if not path.is_dir():
        raise HarnessError(f"CODESYNC_SRC={raw}: no such directory; point it at a CodeSync checkout")
    backend = path / os.environ.get("CODESYNC_BACKEND_DIR", "backend")
    if not (backend / "package.json").is_file():
        raise HarnessError(
            f"CODESYNC_SRC={raw}: no {backend.name}/package.json in it; "
            "set CODESYNC_BACKEND_DIR to the folder of CodeSync's backend"
        )
    return path


def backend_dir(source: Path) -> Path:
    """The backend folder of a CodeSync checkout (the build context of its image)."""
    return source / os.environ.get("CODESYNC_BACKEND_DIR", "backend")


class ComposeStack(Stack):
    """CodeSync and its monitoring in containers, addressed through 127.0.0.1 ports."""

    backend = "compose"

    def __init__(
        self,
        *,
        compose_file: str | Path | None = None,
        metrics_token: str | None = None,
        images: str | None = None,
        engine: str | None = None,
        codesync_src: str | Path | None = None,
        faults: list[str] | tuple[str, ...] = (),
        twin_args: list[str] | tuple[str, ...] = (),
        scrape_interval: str | None = None,
        compress: float = 1.0,
        ports: dict[str, int] | None = None,
        ready_timeout: float = 180.0,
        state_dir: str | Path | None = None,
        **_ignored: object,
    ) -> None:
        super().__init__()
        self.compose_file = compose_file
        self._token = metrics_token or os.environ.get("METRICS_TOKEN") or None
        self.images = images or os.environ.get("CODESYNC_COMPOSE_IMAGES") or None
        self.engine_name = engine
        self.codesync_src = codesync_src
        self.faults = list(faults)
        self.twin_args = list(twin_args)
        self.scrape_interval = scrape_interval
        self.compress = compress
        self.requested_ports = dict(ports or {})
        self.ready_timeout = ready_timeout
        self.state_dir = resolve_state_dir(state_dir)
        self.run_dir = self.state_dir / "compose"
        self.project = f"codesync-load-{secrets.token_hex(4)}"
        self.files: list[Path] = []
        self.ports: dict[str, int] = {}
        self.wrapper: Path | None = None
        self.engine: Engine | None = None
        self.jobs: list[str] = []
        self.probe_jobs: list[str] = []  # the uptime witness's jobs (blackbox-exporter), not in `jobs`
        self._compose = None
        self._webhook = None
        self.tracker_record: dict | None = None  # Bugsink (service bugsink): url, dsn, token, project
        self._recorded = False
        self._started = False
        self._grafana_password: str | None = None

    # ----- what callers read -------------------------------------------------------------------

    @property
    def grafana(self) -> dict[str, str] | None:
        """The Grafana of the stack and its admin login (None in local-images mode and before `up()`)."""
        url = self._urls.get("grafana")
        if not url:
            return None
        password = self._grafana_password or os.environ.get("GRAFANA_ADMIN_PASSWORD") or GRAFANA_DEFAULT_PASSWORD
        return {"url": url, "user": GRAFANA_USER, "password": password}

    def record(self) -> dict:
        """What the state file keeps of this stack (readable by the owner only: it holds logins)."""
        return {
            "backend": self.backend,
            "state_dir": str(self.state_dir),
            "run_dir": str(self.run_dir),
            "engine": self.engine.name if self.engine else None,
            "images": self.images,
            "project": self.project,
            "files": [str(path) for path in self.files],
            "wrapper": str(self.wrapper) if self.wrapper else None,
            "compose_file": str(self.files[0]) if self.files else None,
            "api_url": self.api_url,
            "yjs_url": self.yjs_url,
            "prometheus_url": self.prometheus_url,
            "alertmanager_url": self.alertmanager_url,
            "metrics_token": self._token,
            "alert_log": str(self.alert_log) if self.alert_log else None,
            "jobs": self.jobs,
            "probe_jobs": self.probe_jobs,
            "ports": self.ports,
            "notes": self.notes,
            "components": self._components,
            "grafana": self.grafana,
            "tracker": self.tracker_record,
        }

    @classmethod
    def from_record(cls, record: dict) -> ComposeStack:
        """The stack a previous `stack up --backend compose` left running, for `down`, `status`, `verify`."""
        stack = cls(state_dir=record.get("state_dir"))
        stack._adopt_recorded_endpoints(record)
        stack.run_dir = Path(record.get("run_dir") or stack.run_dir)
        stack.engine_name = record.get("engine")
        stack.images = record.get("images")
        stack.project = record.get("project") or stack.project
        stack.files = [Path(path) for path in record.get("files") or []]
        stack.wrapper = Path(record["wrapper"]) if record.get("wrapper") else None
        stack.alert_log = Path(record["alert_log"]) if record.get("alert_log") else None
        stack.jobs = list(record.get("jobs") or [])
        stack.probe_jobs = list(record.get("probe_jobs") or [])
        stack.ports = dict(record.get("ports") or {})
        stack.notes = list(record.get("notes") or [])
        stack._components = dict(record.get("components") or {})
        for name, comp in stack._components.items():
            stack._urls.setdefault(name, comp.get("url"))
        stack._grafana_password = (record.get("grafana") or {}).get("password")
        stack.tracker_record = record.get("tracker")
        stack._recorded = True
        stack._started = True
        return stack

    # ----- start-up ----------------------------------------------------------------------------

    def up(self) -> ComposeStack:
        try:
            self._refuse_if_running()
            self.engine = find_engine(self.engine_name)
            self.images = self.images or ("local" if self.engine.name == "podman" else "upstream")
            if self.images not in ("local", "upstream"):
                raise HarnessError(f"CODESYNC_COMPOSE_IMAGES={self.images!r}: use local or upstream")
            source = codesync_source(self.codesync_src)
            self._prepare_run_dir()
            self.files = [find_compose_file(self.compose_file)]
            if self.images == "local":
                self.files.append(REPO_ROOT / LOCAL_OVERRIDE)
                self._up_local(source)
            else:
                self._up_upstream(source)
            self._save_state()
            return self
        except BaseException:
            self.down()
            raise

    def _refuse_if_running(self) -> None:
        record = read_state(self.state_dir)
        if record and not record.get("corrupt"):
            where = "" if self.state_dir == resolve_state_dir(None) else f" --state-dir {self.state_dir}"
            raise HarnessError(
                f"a {record.get('backend')} stack is already recorded; run `codesync-load stack down{where}` first"
            )

    def _up_local(self, source: Path | None) -> None:
        from codesync_load.stack.images import ensure_images

        if self.faults:
            from twin.faults import parse_faults  # one line per bad name, before anything starts

            parse_faults(self.faults)
        unknown = sorted(set(self.requested_ports) - set(PORT_NAMES))
        if unknown:
            raise HarnessError(f"--port {unknown[0]}=...: no such component; name one of {', '.join(PORT_NAMES)}")
        self.ports = pick_ports({name: self.requested_ports.get(name, 0) for name in PORT_NAMES})
        token_file = self._write_token()
        webhook_url = f"http://{HOST}:{self.ports['webhook']}/alerts"
        rendered = render_configs(
            MONITORING_DIR,
            self.run_dir,
            targets={
                "codesync-backend": f"{HOST}:{self.ports['api']}",
                "codesync-yjs": f"{HOST}:{self.ports['yjs']}",
                "node-exporter": f"{HOST}:{self.ports['node-exporter']}",
                "postgres-exporter": f"{HOST}:{self.ports['postgres-exporter']}",
                "redis-exporter": f"{HOST}:{self.ports['redis-exporter']}",
                "prometheus": f"{HOST}:{self.ports['prometheus']}",
                "alertmanager": f"{HOST}:{self.ports['alertmanager']}",
            },
            alertmanager=f"{HOST}:{self.ports['alertmanager']}",
            webhook_url=webhook_url,
            token_file=token_file,
            scrape_interval=self.scrape_interval,
            compress=self.compress,
        )
        self.jobs = rendered.jobs
        # The uptime probe, as in the local stack: /health and the database port, at the guide's
        # intervals scaled like the rules; the exporter shares the host network, so loopback.
        factor = blackbox.interval_factor(self.compress, self.scrape_interval)
        self.probe_jobs = blackbox.add_jobs(
            rendered.prometheus_config,
            blackbox.probe_jobs(
                f"http://{HOST}:{self.ports['api']}",
                f"{HOST}:{self.ports['postgres']}",
                f"{HOST}:{self.ports['blackbox']}",
                factor,
            ),
        )
        self.notes.extend(rendered.notes)
        if source is not None:
            self.files.append(REPO_ROOT / CODESYNC_OVERRIDE)
        assert self.engine is not None
        built = ensure_images(self.engine, self.run_dir / "logs", backend_dir(source) if source else None)
        self.notes.append(f"images ready in {built.seconds:.0f} s")
        self.notes.extend(note for note in built.notes if "built" in note)
        self._start_webhook()
        # The containers share the host's network here, so the twin reaches Bugsink on loopback.
        tracker = TrackerSpec.new(self.run_dir / "tracker", self.ports["tracker"])
        # The twin's release, which the tracker check then expects on every event; a real
        # CodeSync (CODESYNC_SRC) names its own, so none is imposed on it.
        release = "" if source is not None else TWIN_RELEASE
        twin_args = [arg for fault in self.faults for arg in ("--fault", fault)] + self.twin_args
        env = {variable: str(self.ports[name]) for name, variable in PORT_VARIABLES.items()}
        env.update(
            POSTGRES_PASSWORD=POSTGRES_PASSWORD,
            REDIS_PASSWORD=REDIS_PASSWORD,
            CODESYNC_RUN_DIR=str(self.run_dir),
            METRICS_TOKEN=self._token or "",
            CODESYNC_TWIN_ARGS=shlex.join(twin_args),
            SENTRY_DSN=tracker.dsn,
            SENTRY_RELEASE=release,
        )
        if source is not None:
            env["CODESYNC_SRC"] = str(source)
        self._write_wrapper(env)
        url = {name: f"http://{HOST}:{port}" for name, port in self.ports.items()}
        self._urls.update(
            api=url["api"],
            yjs=f"ws://{HOST}:{self.ports['yjs']}",
            prometheus=url["prometheus"],
            alertmanager=url["alertmanager"],
        )
        probes: dict[str, Callable[[], bool]] = {
            "postgres": lambda: _postgres_answers(self.ports["postgres"]),
            "redis": lambda: _redis_answers(self.ports["redis"]),
            "codesync-api": lambda: promapi.get(url["api"] + "/health", 1.0)[0] == 200,
            "codesync-yjs": lambda: accepts_connections(self.ports["yjs"]),
            "node-exporter": lambda: promapi.get(url["node-exporter"] + "/metrics", 2.0)[0] == 200,
            "postgres-exporter": lambda: promapi.get(url["postgres-exporter"] + "/metrics", 2.0)[0] == 200,
            "redis-exporter": lambda: promapi.get(url["redis-exporter"] + "/metrics", 2.0)[0] == 200,
            "blackbox-exporter": lambda: promapi.get(url["blackbox"] + "/metrics", 2.0)[0] == 200,
            "alertmanager": lambda: promapi.alertmanager_ready(url["alertmanager"]),
            "prometheus": lambda: promapi.get(url["prometheus"] + "/-/ready", 1.0)[0] == 200,
            "bugsink": lambda: tracker_ready(tracker.url),
        }
        for name, service_url in (
            ("api", url["api"]),
            ("yjs", self.yjs_url),
            ("postgres", f"postgresql://{HOST}:{self.ports['postgres']}"),
            ("redis", f"redis://{HOST}:{self.ports['redis']}"),
            ("prometheus", url["prometheus"]),
            ("alertmanager", url["alertmanager"]),
        ):
            self._components[name] = {"url": service_url, "pid": None}
        for index, stage in enumerate(STAGES):
            self._start_stage(stage, {service: probes[service] for service in stage})
            if index == 0:  # before CodeSync starts: its first error event finds the project
                self._provision_tracker(tracker, release)
        self._wait_targets_up()

    def _up_upstream(self, source: Path | None) -> None:
        if self.faults or self.scrape_interval or self.compress != 1.0 or self.requested_ports:
            raise HarnessError(
                "--fault, --scrape-interval, --compress and --port need the local images "
                "(CODESYNC_COMPOSE_IMAGES=local, podman); the upstream images run monitoring/ as it is"
            )
        if source is not None:
            self.files.append(REPO_ROOT / CODESYNC_OVERRIDE)
        for service, port in UPSTREAM_PUBLISHED.items():
            from codesync_load.stack.ports import port_in_use

            if port_in_use(port):
                raise HarnessError(
                    f"service {service}: port {port} on {HOST} is in use (docker-compose.test.yml publishes it there); "
                    "stop what listens there"
                )
        self._write_token()
        tracker = TrackerSpec.new(
            self.run_dir / "tracker", UPSTREAM_PUBLISHED["bugsink"], dsn_netloc=UPSTREAM_TRACKER_NETLOC
        )
        release = "" if source is not None else TWIN_RELEASE  # as in local-images mode
        # CodeSync's containers read SENTRY_DSN from the environment (docker-compose.test.yml).
        env = {"METRICS_TOKEN": self._token or "", "SENTRY_DSN": tracker.dsn, "SENTRY_RELEASE": release}
        if source is not None:
            env["CODESYNC_SRC"] = str(source)
        self._write_wrapper(env)
        compose = self._docker_compose()
        self._started = True
        try:
            compose.start()
        except Exception as err:
            raise HarnessError(f"`docker compose up` failed: {_called_process_tail(err)}") from None
        for name, (service, port, scheme) in UPSTREAM_SERVICES.items():
            host, published = compose.get_service_host_and_port(service, port)
            self._urls[name] = f"{scheme}://{host}:{published}"
            self._components[name] = {"url": self._urls[name], "pid": None, "service": service}
        api = self._urls["api"] or ""
        self._wait_service("codesync-api", lambda: promapi.get(api + "/health", 1.0)[0] == 200)
        self._wait_service("prometheus", lambda: promapi.get(f"{self.prometheus_url}/-/ready", 1.0)[0] == 200)
        self._wait_service("bugsink", lambda: tracker_ready(tracker.url))
        self._provision_tracker(tracker, release)
        self._wait_targets_up()

    def _provision_tracker(self, tracker: TrackerSpec, release: str) -> None:
        """Create the project (with the DSN key CodeSync was given) and the API token inside the
        bugsink container, with its own `bugsink-manage`; then record where the verifier reads."""
        container = self._service_container("bugsink")
        cid = container and (container.get("Id") or container.get("ID"))
        if not cid:
            raise HarnessError("service bugsink: no container to create the project in")
        assert self.engine is not None
        script = provision_script(tracker)
        result = self.engine.run("exec", cid, "bugsink-manage", "shell", "-c", script, timeout=120)
        problem = provisioned(tracker, result.stdout) if result.returncode == 0 else None
        if result.returncode != 0 or problem:
            detail = problem or last_lines(result.stdout + "\n" + result.stderr, 3)
            raise HarnessError(f"service bugsink: the harness's project could not be created ({detail})")
        self.tracker_record = {**tracker.record(), "release": release or None}
        self._components["tracker"] = {"url": tracker.url, "pid": None, "service": "bugsink"}

    def _start_webhook(self) -> None:
        import sys

        from codesync_load.processes import ManagedProcess

        self.alert_log = self.run_dir / "alerts.jsonl"
        hook = [sys.executable, "-m", "codesync_load.stack.webhook", "--port", str(self.ports["webhook"])]
        url = f"http://{HOST}:{self.ports['webhook']}"
        self._webhook = ManagedProcess.start(
            [*hook, "--out", str(self.alert_log)], name="webhook", log_path=self.run_dir / "logs" / "webhook.log"
        )
        self._components["webhook"] = {
            "url": url + "/alerts",
            "pid": self._webhook.pid,
            "expected": "codesync_load.stack.webhook",
        }
        self._webhook.wait_until(lambda: promapi.get(url + "/-/ready", 0.5)[0] == 200, 30, f"answering at {url}")

    def _write_wrapper(self, env: dict[str, str]) -> None:
        """The `docker compose` testcontainers runs: the engine's CLI with this stack's variables."""
        assert self.engine is not None
        env = {**self.engine.env, **env, "COMPOSE_PROJECT_NAME": self.project}
        lines = ["#!/bin/sh", "# Written by codesync-load's compose launcher for one stack; removed with it."]
        lines += [f"export {name}={shlex.quote(value)}" for name, value in sorted(env.items())]
        if self.engine.name == "podman":
            import sys

            lines.append(f'exec {shlex.quote(sys.executable)} -m codesync_load.stack.compose_adapter "$@"')
        else:
            lines.append('exec docker "$@"')
        self.wrapper = self.run_dir / "compose-cli"
        self.wrapper.write_text("\n".join(lines) + "\n")
        self.wrapper.chmod(0o700)

    def _docker_compose(self, services: list[str] | None = None):
        from testcontainers.compose import DockerCompose

        # testcontainers logs every failed compose call at ERROR; our own one line says it better.
        logging.getLogger("testcontainers").addHandler(logging.NullHandler())
        logging.getLogger("testcontainers").propagate = False
        return DockerCompose(
            context=str(REPO_ROOT),
            compose_file_name=[str(path) for path in self.files],
            wait=False,
            services=services,
            docker_command_path=str(self.wrapper),
        )

    def _start_stage(self, services: tuple[str, ...], probes: dict[str, Callable[[], bool]]) -> None:
        compose = self._docker_compose(list(services))
        self._started = True
        try:
            compose.start()
        except Exception as err:
            raise HarnessError(
                f"service {'/'.join(services)} could not be started: {_called_process_tail(err)}"
            ) from None
        for service, probe in probes.items():
            self._wait_service(service, probe)

    def _wait_service(self, service: str, probe: Callable[[], bool]) -> None:
        """Poll `probe` until true; a container that exits or never answers is named with its log."""
        deadline = time.monotonic() + self.ready_timeout
        next_state_check = 0.0
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if probe():
                    return
            if time.monotonic() >= next_state_check:
                state = self._container_state(service)
                if state is not None and state not in ("running", "created", "starting", "restarting"):
                    tail = self._log_tail(service)
                    raise HarnessError(f"service {service} stopped ({state}) during start-up: {tail}")
                next_state_check = time.monotonic() + 5.0
            time.sleep(0.25)
        raise HarnessError(f"service {service} not ready within {self.ready_timeout:g} s: {self._log_tail(service)}")

    def _service_container(self, service: str) -> dict | None:
        """The engine's view of the service's container ({"Id", "State", ...}), or None.
        One engine call: the compose CLI would cost a second process and seconds under load."""
        assert self.engine is not None
        result = self.engine.run(
            "ps",
            "-a",
            "--no-trunc",
            "--filter",
            f"label={PROJECT_LABEL}={self.project}",
            "--filter",
            f"label={SERVICE_LABEL}={service}",
            "--format",
            "json",
            timeout=60,
        )
        if result.returncode != 0 or not result.stdout.strip():
            return None
        text = result.stdout.strip()
        # podman prints one JSON array, Docker one object per line.
        entries = json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines()]
        return entries[0] if entries else None

    def _container_state(self, service: str) -> str | None:
        """ "running", "exited", ... of the service's container; "missing" when it has none."""
        container = self._service_container(service)
        if container is None:
            return "missing"
        return str(container.get("State") or "").lower() or None

    def _log_tail(self, service: str, count: int = 5) -> str:
        """The last lines the service's container printed (stdout and stderr, as the engine keeps them)."""
        container = self._service_container(service)
        cid = container and (container.get("Id") or container.get("ID"))
        if not cid:
            return "(no container, so no log)"
        assert self.engine is not None
        result = self.engine.run("logs", "--tail", str(count), cid, timeout=60)
        return "last log lines: " + last_lines(result.stdout + "\n" + result.stderr, count)

    def _wait_targets_up(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        waiting: dict[str, str] = {"all": "not asked yet"}
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError, KeyError):
                waiting = promapi.targets_not_up(self.prometheus_url, self.jobs or None, self.probe_jobs)
                if not waiting and promapi.alertmanager_ready(self.alertmanager_url):
                    return
            time.sleep(0.5)
        detail = "; ".join(f"job {job}: {error}" for job, error in sorted(waiting.items()))
        raise HarnessError(
            f"Prometheus targets not up within {self.ready_timeout:g} s ({detail}); "
            f"logs: `{self.wrapper} compose -f ... logs SERVICE` or {self.run_dir / 'logs'}"
        )

    def _save_state(self) -> None:
        write_state(self.state_dir, self.record())
        self._recorded = True

    # ----- running and stopping ----------------------------------------------------------------

    def ready(self) -> bool:
        try:
            return not promapi.targets_not_up(
                self.prometheus_url, self.jobs or None, self.probe_jobs
            ) and promapi.alertmanager_ready(self.alertmanager_url)
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def detach(self) -> None:
        if self._webhook is not None:
            self._webhook.detach()
        self._webhook = None

    def leftovers(self) -> list[str]:
        """Names of this project's containers the engine still has (empty after a clean `down`)."""
        engine = self.engine or (find_engine(self.engine_name) if self.engine_name else None)
        if engine is None:
            return []
        result = engine.run("ps", "-a", "--filter", f"label={PROJECT_LABEL}={self.project}", "--format", "{{.Names}}")
        return [line for line in result.stdout.split() if line]

    def down(self) -> None:
        """Remove every container of the project (verified, forced if needed), stop the webhook."""
        if self._started and self.wrapper is not None and self.wrapper.exists():
            with contextlib.suppress(Exception):
                self._docker_compose().stop(down=True)
            with contextlib.suppress(Exception):
                engine = self.engine or find_engine(self.engine_name)
                self.engine = engine
                left = self.leftovers()
                if left:
                    engine.run("rm", "-f", *left, timeout=60)
        self._started = False
        if self._webhook is not None:
            self._webhook.stop()
        elif self._recorded and (self._components.get("webhook") or {}).get("pid"):
            from codesync_load.processes import stop_pid

            comp = self._components["webhook"]
            with contextlib.suppress(Exception):
                stop_pid(comp["pid"], expected_name=comp.get("expected"))
        self._webhook = None
        if self._recorded:
            record = read_state(self.state_dir)
            if record is None or (
                record.get("backend") == self.backend and record.get("project") in (None, self.project)
            ):
                remove_state(self.state_dir)
            self._recorded = False


def _postgres_answers(port: int) -> bool:
    import psycopg

    with psycopg.connect(
        f"postgresql://codesync:{POSTGRES_PASSWORD}@{HOST}:{port}/codesync", connect_timeout=2
    ) as conn:
        return conn.execute("select 1").fetchone() == (1,)


def _redis_answers(port: int) -> bool:
    import redis

    client = redis.Redis(host=HOST, port=port, password=REDIS_PASSWORD, socket_timeout=2)
    try:
        return bool(client.ping())
    finally:
        client.close()


def _called_process_tail(err: BaseException) -> str:
    """The last lines a failed compose call printed (CalledProcessError), else the error itself."""
    output = ""
    for attr in ("stderr", "stdout"):
        value = getattr(err, attr, None)
        if value:
            output += (value.decode(errors="replace") if isinstance(value, bytes) else str(value)) + "\n"
    return last_lines(output, 3) if output.strip() else (str(err).splitlines() or [type(err).__name__])[0]
