"""A stack somebody else runs: URLs of CodeSync, Prometheus and Alertmanager; starts nothing.

    >>> stack = ExternalStack(api_url="http://10.0.0.5:4000", yjs_url="ws://10.0.0.5:4001",
    ...                       prometheus_url="http://10.0.0.5:9090", metrics_token="...")
    >>> stack.up()          # only checks reachability: one line per URL that does not answer

For a staging deployment or a stack started by other means. `up()` never starts and `down()`
never stops anything; both only read or remove the state file (so `stack status` and later
commands find the URLs).
"""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

from codesync_load.errors import HarnessError
from codesync_load.stack import promapi
from codesync_load.stack.base import Stack
from codesync_load.stack.state import live_pids, read_state, remove_state, resolve_state_dir, write_state
from codesync_load.urls import port_of, require_target_urls

# name -> (option, path probed over HTTP; None = a TCP connect is enough)
_PROBES = {
    "api": ("--api-url", "/health"),
    "yjs": ("--yjs-url", None),
    "prometheus": ("--prometheus-url", "/-/ready"),
    "alertmanager": ("--alertmanager-url", "/-/ready"),
}
REQUIRED = ("api", "prometheus")


def _probe(name: str, url: str, path: str | None, timeout: float) -> str | None:
    """None when `url` answers, else why not (one short phrase)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
        return "not an http(s):// or ws(s):// URL"
    try:
        port = port_of(parts)
    except ValueError:
        return "has an invalid port"
    if path is None:
        try:
            with socket.create_connection((parts.hostname, port), timeout=timeout):
                return None
        except OSError as err:
            return err.strerror or str(err)
    try:
        status, _ = promapi.get(url.rstrip("/") + path, timeout=timeout)
    except OSError as err:
        reason = getattr(err, "reason", err)
        return getattr(reason, "strerror", None) or str(reason)
    return None if status == 200 else f"GET {path} answered HTTP {status}"


class ExternalStack(Stack):
    """URLs given by the user; reachability checked, nothing started or stopped."""

    backend = "external"

    def __init__(
        self,
        *,
        api_url: str | None = None,
        yjs_url: str | None = None,
        prometheus_url: str | None = None,
        alertmanager_url: str | None = None,
        metrics_token: str | None = None,
        state_dir: str | Path | None = None,
        record_state: bool = True,
        timeout: float = 3.0,
    ) -> None:
        super().__init__()
        given = {"api": api_url, "yjs": yjs_url, "prometheus": prometheus_url, "alertmanager": alertmanager_url}
        self._urls.update({name: url.rstrip("/") if url else None for name, url in given.items()})
        self._token = metrics_token or None
        self._components = {name: {"url": url, "pid": None} for name, url in self._urls.items() if url}
        self.state_dir = resolve_state_dir(state_dir)
        self.record_state = record_state
        self.timeout = timeout
        self._wrote_state = False

    def unreachable(self) -> list[str]:
        """One line per given URL that does not answer, naming the option to fix."""
        lines = []
        for name, (option, path) in _PROBES.items():
            url = self._urls[name]
            if url:
                why = _probe(name, url, path, self.timeout)
                if why:
                    lines.append(f"{name} at {url} is unreachable ({why}); start it or fix {option}")
        return lines

    def up(self) -> ExternalStack:
        missing = [_PROBES[name][0] for name in REQUIRED if not self._urls[name]]
        if missing:
            raise HarnessError(f"the external backend needs {' and '.join(missing)}; pass the URL of each")
        require_target_urls(**{f"{name}_url": url for name, url in self._urls.items()})
        lines = self.unreachable()
        if lines:
            raise HarnessError("\n".join(lines))
        if self.record_state:
            record = read_state(self.state_dir)
            if record and (live_pids(record) or record.get("backend") == "external"):
                raise HarnessError(
                    f"a stack is already running ({record.get('backend')} backend, recorded in {self.state_dir}); "
                    "run `codesync-load stack down` first"
                )
            write_state(self.state_dir, self.record())
            self._wrote_state = True
        return self

    def ready(self) -> bool:
        return not self.unreachable()

    def record(self) -> dict:
        return {
            "backend": self.backend,
            "created_at": time.time(),
            "state_dir": str(self.state_dir),
            "api_url": self.api_url,
            "yjs_url": self.yjs_url,
            "prometheus_url": self.prometheus_url,
            "alertmanager_url": self.alertmanager_url,
            "metrics_token": self._token,
            "components": self._components,
        }

    @classmethod
    def from_record(cls, record: dict) -> ExternalStack:
        stack = cls(
            api_url=record.get("api_url"),
            yjs_url=record.get("yjs_url"),
            prometheus_url=record.get("prometheus_url"),
            alertmanager_url=record.get("alertmanager_url"),
            metrics_token=record.get("metrics_token"),
            state_dir=record.get("state_dir"),
        )
        stack._wrote_state = True
        return stack

    def down(self) -> None:
        """Forget the URLs (remove the state file); the services themselves keep running."""
        if self._wrote_state:
            with contextlib.suppress(OSError):
                record = read_state(self.state_dir)
                if record and record.get("backend") == "external":
                    remove_state(self.state_dir)
            self._wrote_state = False
