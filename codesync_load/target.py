"""Which CodeSync a command judges: the options given, else the recorded stack, else the twin.

    >>> target = resolve_target(api_url=None, yjs_url=None)      # None: no option, no recorded stack
    >>> target = resolve_target(state_dir=None)                   # the stack `stack up` left running
    >>> target.label
    'on api http://10.0.0.5:4000, yjs ws://10.0.0.5:4001'
    >>> EMBEDDED_TWIN
    'on the embedded twin'

Why one resolver: `run`, `verify`, `gate`, `report` and the alert scenarios must act on the
same target, and a green verdict about a twin the user never pointed the harness at is the
worst false all-clear there is. Only a caller that gets None may start the embedded twin, and
every verdict line and report header says which target it judged (`label`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codesync_load.errors import HarnessError
from codesync_load.urls import require_target_urls

EMBEDDED_TWIN = "on the embedded twin"


@dataclass(frozen=True)
class Target:
    """A CodeSync's endpoints, where they came from, and whether the harness runs it (a twin)."""

    api_url: str
    yjs_url: str
    metrics_token: str | None = None
    prometheus_url: str | None = None
    alertmanager_url: str | None = None
    source: str = "options"  # options | recorded | twin
    twin: bool = False  # a twin the harness started (it can be broken on purpose)
    backend: str = "external"
    monitoring: dict[str, Any] | None = None  # what the recorded stack runs (rule files, configs)
    alert_log: str | None = None
    tracker: dict[str, Any] | None = None  # the stack's error tracker (url, dsn, token, project_id, release)

    @property
    def label(self) -> str:
        """The words every verdict line and report header carries."""
        if self.twin and self.source == "twin":
            return EMBEDDED_TWIN
        where = f"api {self.api_url}, yjs {self.yjs_url}"
        if self.twin:
            return f"on the twin of the recorded stack ({where})"
        return f"on {where}"

    def record(self) -> dict[str, Any]:
        """JSON-ready, without the token (written next to a run: target.json)."""
        return {
            "api_url": self.api_url,
            "yjs_url": self.yjs_url,
            "prometheus_url": self.prometheus_url,
            "alertmanager_url": self.alertmanager_url,
            "source": self.source,
            "twin": self.twin,
            "backend": self.backend,
            "label": self.label,
        }

    def stack(self) -> Any:
        """A Stack over these URLs that starts and stops nothing (what gate and verify drive)."""
        from codesync_load.stack.external import ExternalStack

        stack = ExternalStack(
            api_url=self.api_url,
            yjs_url=self.yjs_url,
            prometheus_url=self.prometheus_url,
            alertmanager_url=self.alertmanager_url,
            metrics_token=self.metrics_token,
            record_state=False,
        )
        if self.alert_log:
            stack.alert_log = Path(self.alert_log)
        stack.tracker_record = self.tracker
        return stack


def target_of_stack(stack: Any, source: str) -> Target:
    """The Target a stack object serves (a recorded one, or a twin stack a command started)."""
    twin = "twin" in (stack.components or {})
    return Target(
        api_url=stack.api_url,
        yjs_url=stack.yjs_url,
        metrics_token=stack.metrics_token,
        prometheus_url=stack.prometheus_url,
        alertmanager_url=stack.alertmanager_url,
        source=source,
        twin=twin,
        backend=stack.backend,
        monitoring=getattr(stack, "monitoring_record", None),
        alert_log=str(stack.alert_log) if getattr(stack, "alert_log", None) else None,
        tracker=getattr(stack, "tracker_record", None),
    )


def resolve_target(
    *,
    api_url: str | None = None,
    yjs_url: str | None = None,
    metrics_token: str | None = None,
    prometheus_url: str | None = None,
    alertmanager_url: str | None = None,
    state_dir: str | Path | None = None,
) -> Target | None:
    """The target of a command: its options, else the recorded stack; None = start the twin.

    Options that name the recorded stack's own API take its Prometheus, Alertmanager and
    token where they were not given, so `gate --api-url X` after `stack up --api-url X` uses
    the monitoring that runs around X.
    """
    from codesync_load.stack import recorded_stack

    require_target_urls(
        api_url=api_url, yjs_url=yjs_url, prometheus_url=prometheus_url, alertmanager_url=alertmanager_url
    )
    if api_url or yjs_url:
        if not (api_url and yjs_url):
            raise HarnessError("--api-url and --yjs-url go together; pass both (or neither, to use the recorded stack)")
        recorded = recorded_stack(state_dir)
        if recorded is not None and _same(recorded.api_url, api_url):
            found = target_of_stack(recorded, "recorded")
            return Target(
                api_url=api_url.rstrip("/"),
                yjs_url=yjs_url.rstrip("/"),
                metrics_token=metrics_token or found.metrics_token,
                prometheus_url=prometheus_url or found.prometheus_url,
                alertmanager_url=alertmanager_url or found.alertmanager_url,
                source="options",
                twin=found.twin,
                backend=found.backend,
                monitoring=found.monitoring,
                alert_log=found.alert_log,
                tracker=found.tracker,
            )
        return Target(
            api_url=api_url.rstrip("/"),
            yjs_url=yjs_url.rstrip("/"),
            metrics_token=metrics_token,
            prometheus_url=prometheus_url,
            alertmanager_url=alertmanager_url,
        )
    recorded = recorded_stack(state_dir)
    if recorded is None or not recorded.api_url or not recorded.yjs_url:
        return None
    found = target_of_stack(recorded, "recorded")
    if prometheus_url or metrics_token:
        return Target(
            **{
                **found.__dict__,
                "prometheus_url": prometheus_url or found.prometheus_url,
                "metrics_token": metrics_token or found.metrics_token,
            }
        )
    return found


def _same(a: str | None, b: str | None) -> bool:
    return bool(a and b) and a.rstrip("/") == b.rstrip("/")
