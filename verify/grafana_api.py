"""Grafana's HTTP API, to hold the dashboard Grafana serves against Prometheus itself.

    >>> api = GrafanaAPI("http://127.0.0.1:3001", user="admin", password="...")
    >>> raw = api.dashboard("codesync-monitoring")        # GET /api/dashboards/uid/<uid>
    >>> api.query_range('sum(rate(x[4s]))', api.prometheus_uid(raw), start, end, step=1.0)
    [Series(labels={}, points=[(1700000000.0, 2.5), ...])]   # POST /api/ds/query, frames decoded
    >>> attach_grafana(ctx, api); grafana_of(ctx) is api
    True

Why: the dashboard file the verifier reads is not necessarily what Grafana shows. Provisioning
may load another file or none, the datasource may point at another Prometheus, and Grafana's
own Prometheus client aligns the range to its step. Asking Grafana for each panel, the way
its frontend does, and comparing the answer with Prometheus' own closes that gap.

Request and answer follow Grafana's documented data source API: a POST of
`{"from": ms, "to": ms, "queries": [{"refId", "datasource": {"uid"}, "expr", "range": true,
"intervalMs", "maxDataPoints"}]}`; the answer is `{"results": {refId: {"status", "frames",
"error"}}}` where each frame has `schema.fields` (a time field, then number fields carrying
the series' `labels`) and `data.values` (one column per field, times in epoch ms, null for a
missing or NaN point).

Failures: an unreachable Grafana, refused credentials or an answer that is not Grafana's end
the verification with one HarnessError line (exit 2, like an unreachable Prometheus); a
query Grafana or its datasource rejects raises GrafanaQueryError, which the check reports as
a failure naming the panel and its query; a missing dashboard raises GrafanaNotFound.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from codesync_load.errors import HarnessError
from verify.prom import Series

ATTRIBUTE = "grafana"


class GrafanaQueryError(Exception):
    """Grafana answered a query with an error (its own or the datasource's)."""


class GrafanaNotFound(Exception):
    """Grafana has no such dashboard (not provisioned, or another uid)."""


@dataclass(frozen=True)
class GrafanaAccess:
    """Where Grafana is and how to log in: a token, else user and password, else anonymous."""

    url: str
    user: str | None = None
    password: str | None = None
    token: str | None = None


class GrafanaAPI:
    """The few Grafana endpoints the dashboard checks use."""

    def __init__(
        self,
        url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._http = requests.Session()
        self._http.headers["Accept"] = "application/json"
        if token:
            self._http.headers["Authorization"] = f"Bearer {token}"
        elif user:
            self._http.auth = (user, password or "")

    @classmethod
    def from_access(cls, access: GrafanaAccess, timeout: float = 10.0) -> GrafanaAPI:
        return cls(access.url, user=access.user, password=access.password, token=access.token, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    # -- transport ---------------------------------------------------------------------
    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """(status, parsed JSON); HarnessError for what no check can judge (down, auth, not Grafana)."""
        try:
            response = self._http.request(method, f"{self.url}{path}", json=body, timeout=self.timeout)
        except requests.RequestException as err:
            raise HarnessError(
                f"Grafana at {self.url} is unreachable ({type(err).__name__}); start the compose stack "
                "or pass the right --grafana-url"
            ) from None
        if response.status_code in (401, 403):
            raise HarnessError(
                f"Grafana at {self.url} refused {method} {path} (HTTP {response.status_code}); "
                "pass --grafana-user and --grafana-password, or --grafana-token, of a viewer account"
            )
        try:
            doc = response.json()
        except ValueError:
            raise HarnessError(
                f"{self.url}{path} answered HTTP {response.status_code} with no JSON; is --grafana-url a Grafana?"
            ) from None
        return response.status_code, doc

    # -- endpoints ---------------------------------------------------------------------
    def dashboard(self, uid: str) -> dict[str, Any]:
        """The dashboard model Grafana serves under `uid` (GET /api/dashboards/uid/<uid>)."""
        status, doc = self._request("GET", f"/api/dashboards/uid/{uid}")
        if status == 404:
            raise GrafanaNotFound(f"Grafana has no dashboard with uid {uid!r} ({_message(doc)})")
        if status != 200 or not isinstance(doc, dict) or not isinstance(doc.get("dashboard"), dict):
            raise HarnessError(f"Grafana at {self.url} answered HTTP {status} for dashboard {uid!r}: {_message(doc)}")
        return doc["dashboard"]

    def datasources(self) -> list[dict[str, Any]]:
        status, doc = self._request("GET", "/api/datasources")
        if status != 200 or not isinstance(doc, list):
            raise HarnessError(f"Grafana at {self.url} answered HTTP {status} for /api/datasources: {_message(doc)}")
        return doc

    def prometheus_uid(self, dashboard: dict[str, Any]) -> str:
        """The datasource the panels name when they all name one by uid, else Grafana's default
        Prometheus datasource (or its only one)."""
        named = {
            str(ds.get("uid"))
            for panel in walk_panels(dashboard.get("panels") or [])
            for ds in [panel.get("datasource"), *[t.get("datasource") for t in panel.get("targets") or []]]
            if isinstance(ds, dict) and ds.get("uid") and not str(ds.get("uid")).startswith("$")
        }
        if len(named) == 1:
            return named.pop()
        proms = [d for d in self.datasources() if d.get("type") == "prometheus"]
        chosen = [d for d in proms if d.get("isDefault")] or proms
        if len(chosen) != 1:
            raise HarnessError(
                f"Grafana at {self.url} has {len(proms)} Prometheus datasources and the dashboard names none "
                "by uid; give the panels a datasource uid"
            )
        return str(chosen[0]["uid"])

    def query_range(self, expr: str, datasource_uid: str, start: float, end: float, step: float) -> list[Series]:
        """`expr` over [start, end] every `step` seconds as Grafana evaluates it for a time-series panel."""
        body = {
            "from": str(int(start * 1000)),
            "to": str(math.ceil(end * 1000)),
            "queries": [
                {
                    "refId": "A",
                    "datasource": {"type": "prometheus", "uid": datasource_uid},
                    "expr": expr,
                    "range": True,
                    "instant": False,
                    "format": "time_series",
                    "intervalMs": int(step * 1000),
                    "maxDataPoints": int((end - start) / step) + 2,
                }
            ],
        }
        status, doc = self._request("POST", "/api/ds/query", body)
        result = (doc.get("results") or {}).get("A") if isinstance(doc, dict) else None
        if result is None:
            raise GrafanaQueryError(f"HTTP {status}, no result for the query: {_message(doc)}")
        if result.get("error") or status >= 400:
            raise GrafanaQueryError(f"HTTP {result.get('status', status)}: {result.get('error') or _message(doc)}")
        return frames_to_series(result.get("frames") or [])


_ENTITIES = {"NaN": math.nan, "Inf": math.inf, "NegInf": -math.inf}


def frames_to_series(frames: list[dict[str, Any]]) -> list[Series]:
    """Grafana data frames as (labels, points): one series per number field. JSON has no NaN or
    Inf: Grafana sends null and lists the indexes in `data.entities`, restored here; a null
    that is none of them (a missing point) is dropped."""
    out = []
    for frame in frames:
        fields = (frame.get("schema") or {}).get("fields") or []
        data = frame.get("data") or {}
        columns = data.get("values") or []
        entities = data.get("entities") or []
        times_at = next((i for i, f in enumerate(fields) if f.get("type") == "time"), None)
        if times_at is None or times_at >= len(columns):
            continue
        times = [t / 1000.0 for t in columns[times_at]]
        for i, field in enumerate(fields):
            if i == times_at or field.get("type") != "number" or i >= len(columns):
                continue
            values = list(columns[i])
            for name, idxs in ((entities[i] if i < len(entities) else None) or {}).items():
                for idx in idxs:
                    values[idx] = _ENTITIES.get(name, values[idx])
            points = [(t, float(v)) for t, v in zip(times, values, strict=False) if v is not None]
            out.append(Series(dict(field.get("labels") or {}), points))
    return out


def walk_panels(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every panel of a dashboard model, rows unfolded."""
    out = []
    for item in items:
        out.extend(walk_panels(item.get("panels") or []) if item.get("type") == "row" else [item])
    return out


def dashboard_uid(path: Path | None) -> str:
    """The uid of the dashboard file the verifier reads: Grafana serves the provisioned copy under it."""
    if path is None:
        raise HarnessError("no dashboard file given (--dashboard); its uid names the dashboard to ask Grafana for")
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise HarnessError(f"dashboard {path} is unreadable ({err}); pass --dashboard with a Grafana JSON") from None
    uid = (data.get("dashboard") or data).get("uid")
    if not uid:
        raise HarnessError(f"dashboard {path} has no uid; give it one so Grafana's copy can be found")
    return str(uid)


def _message(doc: Any) -> str:
    if isinstance(doc, dict) and doc.get("message"):
        return str(doc["message"])[:200]
    return json.dumps(doc)[:200]


def attach_grafana(ctx: Any, api: GrafanaAPI) -> GrafanaAPI:
    """Give a verify context a Grafana (the context itself knows nothing of one, like live targets)."""
    setattr(ctx, ATTRIBUTE, api)
    return api


def grafana_of(ctx: Any) -> GrafanaAPI:
    """The context's Grafana; MissingInput (the check is skipped) when none was attached."""
    api = getattr(ctx, ATTRIBUTE, None)
    if api is None:
        from verify.checks.base import MissingInput

        raise MissingInput("no Grafana in this stack (--grafana-url, or a compose stack's Grafana)", applies=False)
    return api


def compare_series(grafana: list[Series], direct: list[Series], rel: float = 1e-9) -> str | None:
    """None when Grafana's answer is Prometheus' (same series, same values at the same steps);
    else what differs first. A point at the two ends of the range may be on one side only."""

    def key(labels: dict[str, str]) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__") or "{}"

    got = {key(s.labels): {t: v for t, v in s.points if not math.isnan(v)} for s in grafana}
    got = {k: v for k, v in got.items() if v}
    want = {key(s.labels): {t: v for t, v in s.points if not math.isnan(v)} for s in direct}
    want = {k: v for k, v in want.items() if v}
    if set(got) != set(want):
        only_g = sorted(set(got) - set(want))
        only_p = sorted(set(want) - set(got))
        return f"series differ: only in Grafana {only_g or '-'}, only in Prometheus {only_p or '-'}"
    edges = {t for points in (*got.values(), *want.values()) for t in (min(points), max(points))}
    for name in sorted(got):
        g, p = got[name], want[name]
        for t in sorted(set(g) | set(p)):
            if t not in g or t not in p:
                if t in edges:
                    continue
                side = "Grafana" if t in g else "Prometheus"
                return f"{name}: a point at t={t:.3f} only in {side} (steps not aligned)"
            if g[t] == p[t]:  # also +Inf == +Inf
                continue
            if not abs(g[t] - p[t]) <= rel * max(1.0, abs(p[t])):
                return f"{name} at t={t:.3f}: Grafana {g[t]:.6g}, Prometheus {p[t]:.6g}"
    return None
