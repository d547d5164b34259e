"""The one interface of a stack, whatever runs it (local processes, compose, external URLs).

    >>> with open_stack("local", compress=30, scrape_interval="2s") as stack:
    ...     stack.api_url, stack.prometheus_url, stack.metrics_token
    ...     stack.components["prometheus"]      # {"url": "http://127.0.0.1:40123", "pid": 12345}

Callers (the CLI, conftest.py, the load runner, the verifier) see URLs, a token, components
and up/down/ready; only the backend knows how the parts were started or found. `down()` is
safe to call twice and after a failed `up()`.
"""

from __future__ import annotations

import os
import secrets
import shutil
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType

from codesync_load.stack.state import pid_alive


class Stack(ABC):
    """A CodeSync target plus its Prometheus and Alertmanager, addressed by URL."""

    backend: str = "?"
    run_dir: Path  # the backends that start something: their own working directory

    def __init__(self) -> None:
        self._urls: dict[str, str | None] = {"api": None, "yjs": None, "prometheus": None, "alertmanager": None}
        self._token: str | None = None
        self._components: dict[str, dict] = {}
        self.notes: list[str] = []
        self.alert_log: Path | None = None  # JSONL of the harness webhook, where the backend has one

    def _prepare_run_dir(self) -> None:
        """An empty run_dir with logs/. Only the stack's own directory is wiped: old TSDB data
        would carry old alerts."""
        shutil.rmtree(self.run_dir, ignore_errors=True)
        (self.run_dir / "logs").mkdir(parents=True)

    def _write_token(self) -> Path | None:
        """The metrics token (the given one, else a new random one) in run_dir/metrics-token,
        owner-only: Prometheus reads it as its bearer token (as root inside a container)."""
        self._token = self._token or secrets.token_urlsafe(24)
        path = self.run_dir / "metrics-token"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self._token)
        return path

    @property
    def api_url(self) -> str | None:
        return self._urls["api"]

    @property
    def yjs_url(self) -> str | None:
        return self._urls["yjs"]

    @property
    def prometheus_url(self) -> str | None:
        return self._urls["prometheus"]

    @property
    def alertmanager_url(self) -> str | None:
        return self._urls["alertmanager"]

    @property
    def metrics_token(self) -> str | None:
        return self._token

    @property
    def components(self) -> dict[str, dict]:
        """Component name -> {"url", "pid"} (pid None for what this stack did not start)."""
        return {name: {"url": comp.get("url"), "pid": comp.get("pid")} for name, comp in self._components.items()}

    @abstractmethod
    def up(self) -> Stack:
        """Start or find every part and return once all are ready; on failure leave nothing running."""

    @abstractmethod
    def down(self) -> None:
        """Stop everything this stack started (idempotent)."""

    @abstractmethod
    def ready(self) -> bool:
        """True when every part answers now."""

    def detach(self) -> None:  # noqa: B027 (optional hook: only backends that start processes need it)
        """Leave the parts running after this interpreter exits (`stack up`); no-op by default."""

    def status(self) -> dict:
        """A JSON-ready description: backend, URLs, and each component with whether it is alive."""
        components = {}
        for name, comp in self._components.items():
            pid = comp.get("pid")
            components[name] = {
                "url": comp.get("url"),
                "pid": pid,
                "alive": pid_alive(pid, comp.get("expected")) if pid else None,
            }
        return {
            "backend": self.backend,
            "api_url": self.api_url,
            "yjs_url": self.yjs_url,
            "prometheus_url": self.prometheus_url,
            "alertmanager_url": self.alertmanager_url,
            "components": components,
            "notes": list(self.notes),
        }

    def _adopt_recorded_endpoints(self, record: dict) -> None:
        """Take the URLs and the metrics token a state record holds (the inverse of `status`'s
        URL fields), for a backend's `from_record`."""
        self._urls.update(
            api=record.get("api_url"),
            yjs=record.get("yjs_url"),
            prometheus=record.get("prometheus_url"),
            alertmanager=record.get("alertmanager_url"),
        )
        self._token = record.get("metrics_token")

    def __enter__(self) -> Stack:
        return self.up()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.down()
