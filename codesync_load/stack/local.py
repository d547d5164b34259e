"""The stack as local processes: the twin, Prometheus, Alertmanager, three exporters, the
uptime probe (blackbox exporter), a webhook, and Bugsink, the error tracker the twin reports to
(codesync_load/stack/tracker.py).

    >>> stack = LocalStack(state_dir=tmp, compress=30, scrape_interval="2s", faults=["error-burst=1.0"])
    >>> stack.up()                   # returns when every Prometheus target is up
    >>> stack.prometheus_url, stack.alert_log
    >>> stack.down()                 # every process stopped by PID, state file removed

Everything is checked before anything starts (binaries, fixed ports, fault names, the
rendered configs through promtool/amtool), so bad input costs one line and leaves nothing
behind. Every start is written to the state file at once, so even a harness killed mid-way
can be cleaned up by `stack down`; any failure or Ctrl-C during `up()` stops what started.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from codesync_load.errors import HarnessError
from codesync_load.processes import ManagedProcess, stop_pid
from codesync_load.stack import blackbox, promapi
from codesync_load.stack.base import Stack
from codesync_load.stack.binaries import find_binaries
from codesync_load.stack.ports import HOST, accepts_connections, pick_ports
from codesync_load.stack.render import MONITORING_DIR, REQUIRED_JOBS, check_configs, render_configs
from codesync_load.stack.state import live_pids, read_state, remove_state, resolve_state_dir, write_state

BINARIES = (
    "prometheus",
    "promtool",
    "prometheus-alertmanager",
    "amtool",
    "prometheus-node-exporter",
    "prometheus-postgres-exporter",
    "prometheus-redis-exporter",
    "prometheus-blackbox-exporter",
)
# Every component with a port, in start order; `twin` has two (api, yjs).
PORT_NAMES = (
    "webhook",
    "tracker",
    "api",
    "yjs",
    "node-exporter",
    "postgres-exporter",
    "redis-exporter",
    "blackbox",
    "alertmanager",
    "prometheus",
)
# Scrape job -> the component (port name) that serves it, for the stack's own parts.
_ROLES = {
    "codesync-backend": "api",
    "codesync-yjs": "yjs",
    "node-exporter": "node-exporter",
    "postgres-exporter": "postgres-exporter",
    "redis-exporter": "redis-exporter",
    "prometheus": "prometheus",
    "alertmanager": "alertmanager",
}
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379"


def _is_local(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def _with_sslmode(dsn: str) -> str:
    """postgres-exporter (lib/pq) insists on TLS unless told otherwise; local PostgreSQL has none."""
    parts = urlsplit(dsn)
    query = dict(parse_qsl(parts.query))
    query.setdefault("sslmode", "disable")
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


class LocalStack(Stack):
    """Every part a child process on a free loopback port, recorded in the state file."""

    backend = "local"

    def __init__(
        self,
        *,
        state_dir: str | Path | None = None,
        monitoring_dir: str | Path | None = None,
        faults: Sequence[str] = (),
        compress: float = 1.0,
        scrape_interval: str | None = None,
        database_url: str | None = None,
        redis_url: str | None = None,
        redis_prefix: str | None = None,
        metrics_token: str | None = None,
        ports: Mapping[str, int] | None = None,
        twin_args: Sequence[str] = (),
        ready_timeout: float = 90.0,
        api_url: str | None = None,
        yjs_url: str | None = None,
    ) -> None:
        super().__init__()
        # Monitoring around a CodeSync this stack did not start: no twin, its URLs scraped.
        self.target_urls = {"api": api_url.rstrip("/"), "yjs": yjs_url.rstrip("/")} if api_url and yjs_url else None
        if bool(api_url) != bool(yjs_url):
            raise HarnessError("--api-url and --yjs-url go together; pass both to monitor a CodeSync you run")
        if self.target_urls and faults:
            raise HarnessError("--fault switches faults on the twin; a CodeSync you run has none: drop --fault")
        self.rewritten: list[str] = []
        self.health: list[dict] = []
        self.monitoring_record: dict | None = None
        self.state_dir = resolve_state_dir(state_dir)
        self.run_dir = self.state_dir / "local"
        self.monitoring_dir = Path(monitoring_dir) if monitoring_dir else MONITORING_DIR
        self.faults = list(faults or ())
        self.compress = float(compress or 1.0)
        self.scrape_interval = scrape_interval
        self.database_url = database_url or None
        self.redis_url = redis_url or None
        self.redis_prefix = redis_prefix or None
        self.twin_record: dict = {}
        self.tracker_record: dict | None = None  # url, dsn, token, project_id, release of Bugsink
        self._token = metrics_token or None
        self.requested_ports = dict(ports or {})
        self.twin_args = list(twin_args)
        self.ready_timeout = ready_timeout
        self.jobs: list[str] = []
        self.probe_jobs: list[str] = []  # the uptime witness's jobs (blackbox exporter), not in `jobs`
        self.ports: dict[str, int] = {}
        self._procs: dict[str, ManagedProcess] = {}
        self._owns_state = False
        self._run_id: str | None = secrets.token_hex(6)

    # ----- start-up -------------------------------------------------------------------------

    def up(self) -> LocalStack:
        try:
            self._refuse_if_running()
            binaries = find_binaries(BINARIES)
            self._check_faults()
            unknown = sorted(set(self.requested_ports) - set(PORT_NAMES))
            if unknown:
                raise HarnessError(f"--port {unknown[0]}=...: no such component; name one of {', '.join(PORT_NAMES)}")
            names = [n for n in PORT_NAMES if n not in self._skipped()]
            ports = pick_ports({name: self.requested_ports.get(name, 0) for name in names})
            self.ports = ports
            self._prepare_run_dir()
            token_file = self._write_token()
            webhook_url = f"http://{HOST}:{ports['webhook']}/alerts"
            targets = {role: f"{HOST}:{ports[name]}" for role, name in _ROLES.items() if name in ports}
            if self.target_urls:
                targets.update({"codesync-backend": self.target_urls["api"], "codesync-yjs": self.target_urls["yjs"]})
            rendered = render_configs(
                self.monitoring_dir,
                self.run_dir,
                targets=targets,
                alertmanager=f"{HOST}:{ports['alertmanager']}",
                webhook_url=webhook_url,
                token_file=token_file,
                scrape_interval=self.scrape_interval or ("1s" if self.target_urls else None),
                compress=self.compress,
                required=("codesync-backend", "codesync-yjs") if self.target_urls else REQUIRED_JOBS,
            )
            self.jobs = rendered.jobs
            self.probe_jobs = self._add_probe_jobs(rendered.prometheus_config, ports)
            self.notes.extend(rendered.notes)
            self.rewritten = list(rendered.rewritten)
            self.monitoring_record = self._monitoring_record(rendered)
            check_configs(rendered, binaries["promtool"], binaries["amtool"])
            self._owns_state = True
            self._start_all(binaries, ports, rendered.prometheus_config, rendered.alertmanager_config)
            if self.target_urls:
                self.health = self._wait_first_scrapes()
            else:
                self._wait_targets_up()
            self._save_state(ready=True)
            return self
        except BaseException:
            self.down()
            raise

    def _skipped(self) -> set[str]:
        """Components not started: the twin's ports around a given target, and the exporters
        whose subject is not on this machine (a remote target's node, database and Redis)."""
        if not self.target_urls:
            return set()
        skipped = {"api", "yjs"}
        if not _is_local(self.target_urls["api"]):
            skipped.add("node-exporter")
            if not self.database_url:
                skipped.add("postgres-exporter")
            if not self.redis_url:
                skipped.add("redis-exporter")
        return skipped

    def _postgres_dsn(self) -> str:
        return self.database_url or os.environ.get("CODESYNC_STACK_PG") or DEFAULT_POSTGRES

    def _add_probe_jobs(self, prometheus_config: Path, ports: dict[str, int]) -> list[str]:
        """The uptime probe's jobs: the target's /health, and the database the exporter watches."""
        api = self.target_urls["api"] if self.target_urls else f"http://{HOST}:{ports['api']}"
        database = blackbox.database_address(self._postgres_dsn()) if "postgres-exporter" in ports else None
        factor = blackbox.interval_factor(self.compress, self.scrape_interval or ("1s" if self.target_urls else None))
        jobs = blackbox.probe_jobs(api, database, f"{HOST}:{ports['blackbox']}", factor)
        return blackbox.add_jobs(prometheus_config, jobs)

    def _monitoring_record(self, rendered: Any) -> dict:
        """What this stack runs, by source file, so that verify and gate judge those files."""
        # Grafana's provisioning layout first (grafana/dashboards/), else any dashboard JSON.
        candidates = sorted(self.monitoring_dir.glob("grafana/dashboards/*.json")) + sorted(
            self.monitoring_dir.rglob("*.json")
        )
        dashboards = [path for path in candidates if '"panels"' in path.read_text(errors="replace")]
        return {
            "dir": str(self.monitoring_dir.resolve()),
            "prometheus_config": str((self.monitoring_dir / "prometheus.yml").resolve()),
            "alertmanager_config": str((self.monitoring_dir / "alertmanager.yml").resolve()),
            "rule_files": [str(p) for p in rendered.rule_sources],
            "dashboard": str(dashboards[0].resolve()) if dashboards else None,
            "rendered_prometheus_config": str(rendered.prometheus_config),
        }

    def _wait_first_scrapes(self) -> list[dict]:
        """Each target's health after its first scrape (Prometheus' own lastError), or what
        it still was when the wait ended: the target is the user's, so down is a finding to
        print, not a start-up failure."""
        deadline = time.monotonic() + min(self.ready_timeout, 15.0)
        targets: list[dict] = []
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(OSError, ValueError, KeyError):
                targets = promapi.active_targets(self.prometheus_url)
                if (
                    targets
                    and all(t["health"] != "unknown" for t in targets)
                    and {t["job"] for t in targets} >= set(self.jobs)
                ):
                    break
            time.sleep(0.2)
        return [{"job": t["job"], "health": t["health"], "lastError": t["lastError"]} for t in targets]

    def _refuse_if_running(self) -> None:
        record = read_state(self.state_dir)
        if not record:
            return
        live = live_pids(record)
        if live or record.get("backend") == "external":
            pids = " ".join(str(pid) for pid in sorted(set(live.values())))
            what = f"pids {pids}" if pids else f"{record.get('backend')} backend"
            where = "" if self.state_dir == resolve_state_dir(None) else f" --state-dir {self.state_dir}"
            raise HarnessError(f"a stack is already running ({what}); run `codesync-load stack down{where}` first")
        remove_state(self.state_dir)  # stale: every recorded process is gone
        self.notes.append("removed a stale state file whose processes were all gone")

    def _check_faults(self) -> None:
        if self.faults:
            from twin.faults import parse_faults  # validates names and parameters: one line each

            parse_faults(self.faults)

    def _write_token(self) -> Path | None:
        if self.target_urls and not self._token:
            return None  # a CodeSync we did not start: its token is the user's to give
        return super()._write_token()

    def _log(self, name: str) -> Path:
        return self.run_dir / "logs" / f"{name}.log"

    def _launch(
        self,
        name: str,
        argv: list[str],
        url: str,
        ready: Callable[[], bool],
        env: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        expected: str | None = None,
    ) -> ManagedProcess:
        proc = ManagedProcess.start(argv, name=name, log_path=self._log(name), env=env)
        self._procs[name] = proc
        self._components[name] = {"url": url, "pid": proc.pid, "expected": expected or Path(argv[0]).name}
        self._save_state(ready=False)
        proc.wait_until(ready, timeout=timeout, what=f"answering at {url}")
        return proc

    def _start_all(self, binaries: dict[str, str], ports: dict[str, int], prom_cfg: Path, am_cfg: Path) -> None:
        url = {name: f"http://{HOST}:{port}" for name, port in ports.items()}
        self.alert_log = self.run_dir / "alerts.jsonl"
        hook = [sys.executable, "-m", "codesync_load.stack.webhook", "--port", str(ports["webhook"])]
        self._launch(
            "webhook",
            [*hook, "--out", str(self.alert_log)],
            url["webhook"] + "/alerts",
            lambda: promapi.get(url["webhook"] + "/-/ready", 0.5)[0] == 200,
            expected="codesync_load.stack.webhook",
        )
        # Bugsink takes seconds to migrate its database: it starts first and is waited for last.
        self._start_tracker(ports["tracker"])
        if self.target_urls:
            self._urls.update(api=self.target_urls["api"], yjs=self.target_urls["yjs"])
        else:
            self._start_twin(ports)
        self._start_exporters(binaries, ports, url)
        self._start_monitoring(binaries, ports, url, prom_cfg, am_cfg)
        self._wait_tracker()

    def _start_tracker(self, port: int) -> None:
        from codesync_load.stack.tracker import TWIN_RELEASE, launch_tracker

        release = None if self.target_urls else TWIN_RELEASE
        proc, self.tracker_record, self._components["tracker"] = launch_tracker(
            self.run_dir, port, self._log("tracker"), release
        )
        self._procs["tracker"] = proc
        self._save_state(ready=False)

    def _wait_tracker(self) -> None:
        from codesync_load.stack.tracker import wait_tracker

        if "tracker" in self._procs and self.tracker_record:
            wait_tracker(self._procs["tracker"], self.tracker_record)

    def _start_exporters(self, binaries: dict[str, str], ports: dict[str, int], url: dict[str, str]) -> None:
        """The node, PostgreSQL and Redis exporters this stack has ports for (see _skipped)."""
        if "node-exporter" in ports:
            self._launch(
                "node-exporter",
                [binaries["prometheus-node-exporter"], f"--web.listen-address={HOST}:{ports['node-exporter']}"],
                url["node-exporter"],
                lambda: accepts_connections(ports["node-exporter"]),
            )
        if "postgres-exporter" in ports:
            dsn = _with_sslmode(self._postgres_dsn())
            self._launch(
                "postgres-exporter",
                [binaries["prometheus-postgres-exporter"], f"--web.listen-address={HOST}:{ports['postgres-exporter']}"],
                url["postgres-exporter"],
                lambda: accepts_connections(ports["postgres-exporter"]),
                env={**os.environ, "DATA_SOURCE_NAME": dsn},
            )
        if "redis-exporter" in ports:
            self._launch(
                "redis-exporter",
                [
                    binaries["prometheus-redis-exporter"],
                    f"--redis.addr={self.redis_url or DEFAULT_REDIS}",
                    f"--web.listen-address={HOST}:{ports['redis-exporter']}",
                ],
                url["redis-exporter"],
                lambda: accepts_connections(ports["redis-exporter"]),
            )
        # The uptime probe: its jobs were added to the rendered prometheus.yml (_add_probe_jobs).
        config = blackbox.write_config(self.run_dir)
        self._launch(
            "blackbox",
            blackbox.argv(binaries[blackbox.BINARY], config, f"{HOST}:{ports['blackbox']}"),
            url["blackbox"],
            lambda: accepts_connections(ports["blackbox"]),
        )

    def _start_monitoring(
        self, binaries: dict[str, str], ports: dict[str, int], url: dict[str, str], prom_cfg: Path, am_cfg: Path
    ) -> None:
        self._launch(
            "alertmanager",
            [
                binaries["prometheus-alertmanager"],
                f"--config.file={am_cfg}",
                f"--storage.path={self.run_dir / 'alertmanager-data'}",
                f"--web.listen-address={HOST}:{ports['alertmanager']}",
                "--cluster.listen-address=",
            ],
            url["alertmanager"],
            lambda: promapi.alertmanager_ready(url["alertmanager"]),
        )
        self._launch(
            "prometheus",
            [
                binaries["prometheus"],
                f"--config.file={prom_cfg}",
                f"--storage.tsdb.path={self.run_dir / 'prometheus-data'}",
                f"--web.listen-address={HOST}:{ports['prometheus']}",
                "--web.enable-lifecycle",
            ],
            url["prometheus"],
            lambda: promapi.get(url["prometheus"] + "/-/ready", 1.0)[0] == 200,
        )
        self._urls.update(prometheus=url["prometheus"], alertmanager=url["alertmanager"])
        self._save_state(ready=False)

    def _start_twin(self, ports: dict[str, int]) -> None:
        from codesync_load.twin_process import start_twin

        env = {
            "DATABASE_URL": self.database_url or "",
            "REDIS_URL": self.redis_url or "",
            "METRICS_TOKEN": self._token or "",
            "SENTRY_DSN": (self.tracker_record or {}).get("dsn") or "",
            "SENTRY_RELEASE": (self.tracker_record or {}).get("release") or "",
        }
        if self.redis_prefix:
            env["CODESYNC_REDIS_PREFIX"] = self.redis_prefix
        # start_twin stops its child itself when the wait fails or is interrupted.
        twin = start_twin(
            self.run_dir,
            faults=self.faults,
            env=env,
            extra_args=self.twin_args,
            api_port=ports["api"],
            yjs_port=ports["yjs"],
            name="twin",
        )
        self._procs["twin"] = twin.process
        self.twin_record = dict(twin.record)
        self._urls.update(api=twin.api_url, yjs=twin.yjs_url)
        self._components["twin"] = {
            "url": twin.api_url,
            "yjs_url": twin.yjs_url,
            "pid": twin.pid,
            "expected": "codesync_load.cli",
        }
        self._save_state(ready=False)

    def _check_alive(self) -> None:
        for name, proc in self._procs.items():
            if not proc.alive():
                tail = proc.log_tail(3)
                raise HarnessError(
                    f"{name} exited with code {proc.popen.returncode} during start-up"
                    + (f": {tail}" if tail else "")
                    + f" (log: {proc.log_path})"
                )

    def _wait_targets_up(self) -> None:
        """Ready = every Prometheus target up and Alertmanager ready; the first scrape lags seconds."""
        deadline = time.monotonic() + self.ready_timeout
        waiting: dict[str, str] = {"all": "not asked yet"}
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(OSError, ValueError, KeyError):
                waiting = promapi.targets_not_up(self.prometheus_url, self.jobs, self.probe_jobs)
                if not waiting and promapi.alertmanager_ready(self.alertmanager_url):
                    return
            time.sleep(0.25)
        detail = "; ".join(f"job {job}: {error}" for job, error in sorted(waiting.items()))
        raise HarnessError(
            f"Prometheus targets not up within {self.ready_timeout:g} s ({detail}); "
            f"fix the job in monitoring/prometheus.yml or the component (logs: {self.run_dir / 'logs'})"
        )

    # ----- state -------------------------------------------------------------------------------

    def _save_state(self, ready: bool) -> None:
        if not self._owns_state:
            return
        write_state(self.state_dir, self.record(ready))

    def record(self, ready: bool = True) -> dict:
        return {
            "backend": self.backend,
            "run_id": self._run_id,
            "ready": ready,
            "created_at": time.time(),
            "state_dir": str(self.state_dir),
            "run_dir": str(self.run_dir),
            "api_url": self.api_url,
            "yjs_url": self.yjs_url,
            "prometheus_url": self.prometheus_url,
            "alertmanager_url": self.alertmanager_url,
            "metrics_token": self._token,
            "alert_log": str(self.alert_log) if self.alert_log else None,
            "jobs": self.jobs,
            "probe_jobs": self.probe_jobs,
            "ports": self.ports,
            "faults": self.faults,
            "twin": self.twin_record,
            "tracker": self.tracker_record,
            "target_urls": self.target_urls,
            "monitoring": self.monitoring_record,
            "rewritten": self.rewritten,
            "health": self.health,
            "notes": self.notes,
            "components": self._components,
        }

    @classmethod
    def from_record(cls, record: dict) -> LocalStack:
        """The stack a previous `stack up` left running, for `down` and `status`."""
        stack = cls(state_dir=record["state_dir"])
        stack._run_id = record.get("run_id")
        stack._owns_state = True
        stack._adopt_recorded_endpoints(record)
        stack.alert_log = Path(record["alert_log"]) if record.get("alert_log") else None
        stack.jobs = list(record.get("jobs") or [])
        stack.probe_jobs = list(record.get("probe_jobs") or [])
        stack.ports = dict(record.get("ports") or {})
        stack.faults = list(record.get("faults") or [])
        stack.twin_record = dict(record.get("twin") or {})
        stack.tracker_record = record.get("tracker")
        stack.target_urls = record.get("target_urls")
        stack.monitoring_record = record.get("monitoring")
        stack.rewritten = list(record.get("rewritten") or [])
        stack.health = list(record.get("health") or [])
        stack.notes = list(record.get("notes") or [])
        stack._components = dict(record.get("components") or {})
        return stack

    # ----- running and stopping -------------------------------------------------------------

    def ready(self) -> bool:
        if not self._components or not all(self.status()["components"][n]["alive"] for n in self._components):
            return False
        try:
            return not promapi.targets_not_up(
                self.prometheus_url, self.jobs, self.probe_jobs
            ) and promapi.alertmanager_ready(self.alertmanager_url)
        except (OSError, ValueError, KeyError):
            return False

    def stop_component(self, name: str) -> None:
        """Stop one part (tests stop the twin to see ServiceDown fire); `down()` skips it later."""
        comp = self._components.get(name)
        if not comp:
            raise HarnessError(f"no component {name!r}; the stack has {', '.join(self._components)}")
        proc = self._procs.pop(name, None)
        if proc is not None:
            proc.stop()
        elif comp.get("pid"):
            stop_pid(comp["pid"], expected_name=comp.get("expected"))

    def detach(self) -> None:
        for proc in self._procs.values():
            proc.detach()
        self._procs.clear()

    def down(self) -> None:
        """Stop in reverse start order, by PID; remove the state file if it is this stack's."""
        for name in reversed(list(self._components)):
            comp = self._components[name]
            proc = self._procs.pop(name, None)
            with contextlib.suppress(Exception):
                if proc is not None:
                    proc.stop()
                elif comp.get("pid"):
                    stop_pid(comp["pid"], expected_name=comp.get("expected"))
        if self._owns_state:
            record = read_state(self.state_dir)
            if record is None or record.get("run_id") == self._run_id:
                remove_state(self.state_dir)
            self._owns_state = False
