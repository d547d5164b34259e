"""The few Prometheus and Alertmanager API reads the stack needs to know it is ready.

    >>> targets_not_up("http://127.0.0.1:9090")     # {} when every active target is up
    {'codesync-backend': 'server returned HTTP status 401 Unauthorized'}
    >>> firing_alerts("http://127.0.0.1:9090")      # [{"labels": {...}, "state": "firing"}, ...]

Plain urllib with short timeouts: readiness is polled many times a second, and these calls
must never hang a start-up or a teardown.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Collection


def get(url: str, timeout: float = 2.0, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """(status, body) of a GET; HTTP errors are answers too, connection errors raise OSError."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def get_json(url: str, timeout: float = 2.0) -> dict | list:
    status, body = get(url, timeout)
    if status != 200:
        raise OSError(f"{url} answered HTTP {status}")
    return json.loads(body)


def active_targets(prometheus_url: str) -> list[dict]:
    """The active targets of /api/v1/targets (job, health, lastError, scrapeUrl...)."""
    data = get_json(f"{prometheus_url}/api/v1/targets?state=active")
    return [
        {
            "job": target.get("labels", {}).get("job") or target.get("scrapePool"),
            "instance": target.get("labels", {}).get("instance"),
            "health": target.get("health"),
            "lastError": target.get("lastError", ""),
            "scrapeUrl": target.get("scrapeUrl"),
        }
        for target in data["data"]["activeTargets"]
    ]


def targets_not_up(prometheus_url: str, jobs: list[str] | None = None, patient: Collection[str] = ()) -> dict[str, str]:
    """Job -> why it is not up ("not scraped yet" or its lastError); {} when all are up.

    A job named in `jobs` but absent from the active targets is not up either. A job in
    `patient` is not waited for until its first scrape (the uptime probe's jobs scrape every
    60 s and 120 s at the guide's pace, and Prometheus may place a job's first scrape anywhere
    in its interval): only a scrape that failed counts against it.
    """
    targets = active_targets(prometheus_url)
    waiting: dict[str, str] = {}
    for target in targets:
        if target["job"] in patient and target["health"] == "unknown":
            continue
        if target["health"] != "up":
            waiting[target["job"]] = target["lastError"] or f"health {target['health']!r} (not scraped yet)"
    for job in jobs or []:
        if not any(target["job"] == job for target in targets):
            waiting.setdefault(job, "no active target")
    return waiting


def rule_alerts(prometheus_url: str) -> list[dict]:
    """Alerts Prometheus holds right now (pending or firing), from /api/v1/alerts."""
    return get_json(f"{prometheus_url}/api/v1/alerts")["data"]["alerts"]


def firing_alerts(prometheus_url: str, alertname: str | None = None) -> list[dict]:
    return [
        alert
        for alert in rule_alerts(prometheus_url)
        if alert.get("state") == "firing" and (alertname is None or alert["labels"].get("alertname") == alertname)
    ]


def alertmanager_ready(alertmanager_url: str) -> bool:
    status, _ = get(f"{alertmanager_url}/-/ready", timeout=1.0)
    return status == 200


def alertmanager_groups(alertmanager_url: str) -> list[dict]:
    """/api/v2/alerts/groups: each group names its receiver and holds its alerts."""
    data = get_json(f"{alertmanager_url}/api/v2/alerts/groups")
    return data if isinstance(data, list) else []
