"""Switchable faults that break the twin the way real services break.

    >>> faults = parse_faults(["slow-route=250", "ws-gauge-leak"])
    >>> faults.active("ws-gauge-leak")
    True
    >>> faults.param("slow-route")
    250.0

Each fault changes one thing and leaves the rest of the twin intact, so the verification
suite can be proven to fail in the check that names that fault's symptom.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from codesync_load.errors import HarnessError


@dataclass(frozen=True)
class FaultSpec:
    name: str
    fault_class: str
    summary: str
    default_param: float | None = None
    param_unit: str = ""


FAULTS: dict[str, FaultSpec] = {
    spec.name: spec
    for spec in (
        FaultSpec(
            "http-counter-frozen",
            "counter stops counting",
            "codesync_http_requests_total stops moving (the duration histogram still counts), "
            "as when a refactor drops the counter's inc() from the middleware",
        ),
        FaultSpec(
            "http-counter-half",
            "counter counts a fraction",
            "codesync_http_requests_total counts every second response only (the duration histogram counts "
            "all), as when one of two response paths forgets the inc()",
        ),
        FaultSpec(
            "ws-gauge-leak",
            "gauge never comes back down",
            "codesync_websocket_connections_active is never decremented on close, "
            "as when the close handler is not wired for one code path",
        ),
        FaultSpec(
            "sessions-gauge-leak",
            "gauge never comes back down",
            "codesync_sessions_active is not decremented when a session is deleted",
        ),
        FaultSpec(
            "label-drift",
            "labels drift from the contract",
            "HTTP metrics carry labels path (raw URL) and status instead of route and status_code",
        ),
        FaultSpec(
            "slow-route",
            "added latency on a route",
            "adds PARAM ms to every file-content PUT (the autosave route)",
            default_param=300.0,
            param_unit="ms",
        ),
        FaultSpec(
            "error-burst",
            "injected 5xx",
            "answers a fraction PARAM of /api requests with 500 INTERNAL_ERROR (seeded, reproducible)",
            default_param=0.2,
            param_unit="fraction",
        ),
        FaultSpec(
            "errors-unreported",
            "server errors not reported",
            "every PARAMth server error is answered 5xx as usual but never reported to the error tracker "
            "(1: none is), as when an error path responds before the Sentry handler sees it",
            default_param=1.0,
            param_unit="nth",
        ),
        FaultSpec(
            "health-ignores-db",
            "health says up while the database is down",
            "ON BY DEFAULT, as in CodeSync: /health answers 200 without checking the database, so with "
            "PostgreSQL stopped the uptime probe says up while every user request fails "
            "(uptime-agrees-with-users reports it). `codesync-load twin --health-checks-db` runs the fixed "
            "version (503 when a SELECT 1 fails); naming this fault keeps the default",
        ),
        FaultSpec(
            "yjs-drop-persist",
            "persistence silently drops Yjs state",
            "Yjs updates are applied, broadcast and counted but never written to storage",
        ),
        FaultSpec(
            "authz-open",
            "authorization not enforced",
            "the participant gates are off: anyone signed in may write files of any session it can read, "
            "add participants (itself included, with any role), invite and revoke",
        ),
        FaultSpec(
            "rate-limit-uncounted",
            "counter stops counting",
            "rate-limit rejections answer 429/1008 but do not move codesync_rate_limit_hits_total",
        ),
        FaultSpec(
            "db-counter-frozen",
            "counter stops counting",
            "database queries run but do not move codesync_db_queries_total or the query-duration histogram",
        ),
        FaultSpec(
            "docs-gauge-per-connection",
            "gauge counts the wrong thing",
            "codesync_yjs_documents_active counts connections to documents, not distinct documents",
        ),
        FaultSpec(
            "yjs-garbage-crash",
            "handler crashes on bad input",
            "a Yjs frame that is not the protocol closes the socket with 1011 (internal error) instead of "
            "1002/1003, as when the decoder's exception escapes the handler",
        ),
        FaultSpec(
            "sessions-gauge-reset",
            "gauge lost on restart",
            "codesync_sessions_active starts at 0 when the process starts, whatever sessions storage holds",
        ),
        FaultSpec(
            "yjs-late-listen",
            "early frames dropped",
            "the Yjs server reads a connection only PARAM ms after it opened (an asynchronous check first): "
            "frames sent on open, the browser's SyncStep1 and awareness, are dropped",
            default_param=200.0,
            param_unit="ms",
        ),
        FaultSpec(
            "socketio-late-handlers",
            "early events dropped",
            "Socket.IO handlers take effect only PARAM ms after connect (registered after an awaited check): "
            "events emitted right after connect, the browser's session:join, are dropped",
            default_param=200.0,
            param_unit="ms",
        ),
        FaultSpec(
            "socketio-late-handlers-some",
            "some early events dropped",
            "for a fraction PARAM of users (assigned in the order the server first sees them: at 0.5 the 2nd, "
            "4th, 6th ...) Socket.IO handlers take effect only 300 ms after connect, as when the awaited check is "
            "a per-user cache that misses for some: those users' events emitted right after connect are dropped",
            default_param=0.5,
        ),
        FaultSpec(
            "socketio-drop",
            "connections dropped",
            "the server disconnects each user's first Socket.IO connection PARAM s after it connected, as a "
            "proxy reload or a failover does: the participant row gets left_at, so a client must become a "
            "participant again after it reconnects",
            default_param=3.0,
            param_unit="s",
        ),
    )
}


@dataclass(frozen=True)
class ActiveFaults:
    """The faults switched on for one twin, with their parameters."""

    params: dict[str, float | None] = field(default_factory=dict)

    def active(self, name: str) -> bool:
        return name in self.params

    def param(self, name: str) -> float:
        value = self.params.get(name)
        if value is None:
            default = FAULTS[name].default_param
            if default is None:
                raise KeyError(f"fault {name} takes no parameter")
            return default
        return value

    def names(self) -> list[str]:
        return sorted(self.params)


def parse_faults(values: list[str] | None) -> ActiveFaults:
    """Parse `NAME` or `NAME=PARAM` strings; unknown names raise HarnessError."""
    params: dict[str, float | None] = {}
    for raw in values or []:
        name, _, value = raw.partition("=")
        name = name.strip()
        if name not in FAULTS:
            raise HarnessError(f"unknown fault {name!r}; run `codesync-load twin --list-faults` for the valid names")
        spec = FAULTS[name]
        if value:
            if spec.default_param is None:
                raise HarnessError(f"fault {name} takes no parameter; pass --fault {name}")
            try:
                params[name] = float(value)
            except ValueError:
                raise HarnessError(
                    f"fault {name} needs a number ({spec.param_unit}), got {value!r}; e.g. --fault {name}="
                    f"{spec.default_param:g}"
                ) from None
        else:
            params[name] = None
    return ActiveFaults(params)


def describe_faults() -> str:
    """The `--list-faults` table."""
    lines = []
    for spec in FAULTS.values():
        param = f" (=PARAM {spec.param_unit}, default {spec.default_param:g})" if spec.default_param else ""
        lines.append(f"{spec.name:22} [{spec.fault_class}]{param}\n    {spec.summary}")
    return "\n".join(lines)
