"""Alert delivery, for real: each link from a scrape to a receiver proven on the running stack.

    >>> [REGISTRY[n].run(ctx).verdict for n in sorted(REGISTRY) if n.startswith("alert-delivery-")]
    ['pass', 'pass', 'pass', 'pass']

Why: a rules file can be flawless and no one ever paged. Parsing the files proves what they
say; these checks ask the running parts what they do, each link on its own so a failure names
the broken one:

- alert-delivery-prometheus-has-alertmanager: Prometheus's /api/v1/alertmanagers lists at least
  one active Alertmanager (else every alert dies in Prometheus).
- alert-delivery-routes-end-at-integrations: in the configuration each of those Alertmanagers
  RUNS (/api/v2/status), every route, nested ones included, names a receiver that exists and
  has at least one integration (a receiver with no *_configs swallows what it gets).
- alert-delivery-webhooks-answer: every webhook receiver URL on a loopback address answers a
  test notification (Alertmanager's webhook payload, alertname CodeSyncLoadDeliveryProbe) with
  2xx; a 404 is a broken receiver. URLs elsewhere are listed as "not probed" and never
  contacted: the harness sends nothing to a host the user did not point it at.
- alert-delivery-scrape-authenticates: no scrape target is down with a 401/403 in its lastError
  (/api/v1/targets): credentials that do not authenticate (a literal ${VAR} Prometheus never
  expands) silence every alert on that job.

All four read only Prometheus's URL (the Alertmanagers are the ones Prometheus itself uses),
so they run against any stack: the local one, compose, or an external deployment.
"""

from __future__ import annotations

import ipaddress
import json
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import yaml

from verify.checks.base import CheckResult, Evidence, MissingInput, check

if TYPE_CHECKING:
    from verify.context import VerifyContext

GROUP = "delivery"
PROBE_ALERT = "CodeSyncLoadDeliveryProbe"


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def alertmanager_urls(ctx: VerifyContext) -> list[str]:
    """Base URLs of the Alertmanagers Prometheus sends to (from /api/v1/alertmanagers)."""
    doc = ctx.prom.get("/api/v1/alertmanagers")
    out = []
    for item in (doc.get("data") or {}).get("activeAlertmanagers") or []:
        url = str(item.get("url", ""))
        for suffix in ("/api/v2/alerts", "/api/v1/alerts"):
            url = url.removesuffix(suffix)
        out.append(url)
    return out


def running_configs(ctx: VerifyContext) -> list[tuple[str, dict[str, Any]]]:
    """(Alertmanager URL, the configuration it runs) for each Alertmanager Prometheus uses."""
    urls = alertmanager_urls(ctx)
    if not urls:
        raise MissingInput("Prometheus sends alerts to no Alertmanager (alert-delivery-prometheus-has-alertmanager)")
    out = []
    for url in urls:
        try:
            status = _get(url + "/api/v2/status")
            out.append((url, yaml.safe_load(status["config"]["original"]) or {}))
        except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as err:
            out.append((url, {"__error__": f"{type(err).__name__}: {err}"}))
    return out


def integrations(receiver: dict[str, Any]) -> list[str]:
    """The integration kinds a receiver has (email_configs, webhook_configs, ...), non-empty ones."""
    return sorted(k for k, v in receiver.items() if k.endswith("_configs") and v)


def walk_routes(route: dict[str, Any], path: str = "route") -> list[tuple[str, str | None]]:
    """(where, receiver) of the route and every nested route (a nested one inherits its parent's)."""
    out = [(path, route.get("receiver"))]
    for i, child in enumerate(route.get("routes") or []):
        child = dict(child)
        child.setdefault("receiver", route.get("receiver"))
        matchers = child.get("matchers") or child.get("match") or ""
        out += walk_routes(child, f"{path}.routes[{i}] {matchers}".rstrip())
    return out


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def probe_notification(receiver: str) -> bytes:
    """An Alertmanager webhook payload (version 4) carrying one firing probe alert."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    alert = {
        "status": "firing",
        "labels": {"alertname": PROBE_ALERT, "severity": "none"},
        "annotations": {"summary": "codesync-load proves this receiver answers; no action needed"},
        "startsAt": now,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "",
        "fingerprint": "0000000000000000",
    }
    doc = {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{PROBE_ALERT}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": receiver,
        "groupLabels": {"alertname": PROBE_ALERT},
        "commonLabels": alert["labels"],
        "commonAnnotations": alert["annotations"],
        "externalURL": "",
        "alerts": [alert],
    }
    return json.dumps(doc).encode()


def post(url: str, body: bytes) -> str:
    """The status a webhook URL answers a POST with, as text ('200', '404', 'unreachable: ...')."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(response.status)
    except urllib.error.HTTPError as err:
        return str(err.code)
    except (urllib.error.URLError, OSError) as err:
        return f"unreachable: {getattr(err, 'reason', err)}"


@check(
    "alert-delivery-prometheus-has-alertmanager",
    group=GROUP,
    needs=("prom",),
    symptom="Prometheus sends its alerts to no Alertmanager",
)
def prometheus_has_alertmanager(ctx: VerifyContext) -> CheckResult:
    urls = alertmanager_urls(ctx)
    ev = Evidence(("active Alertmanager (Prometheus /api/v1/alertmanagers)",))
    for url in urls:
        ev.add(url)
    if not urls:
        return CheckResult.failed(
            f"Prometheus at {ctx.prom.url} has no active Alertmanager: every alert that fires is delivered nowhere",
            expected="at least one",
            measured="0 active",
            evidence=ev,
        )
    return CheckResult.passed(f"Prometheus sends alerts to {len(urls)} Alertmanager(s)", evidence=ev)


@check(
    "alert-delivery-routes-end-at-integrations",
    group=GROUP,
    needs=("prom",),
    symptom="an Alertmanager route ends at a missing receiver or one with no integration",
)
def routes_end_at_integrations(ctx: VerifyContext) -> CheckResult:
    ev = Evidence(("alertmanager", "route", "receiver", "integrations", "ok"))
    bad = []
    for url, config in running_configs(ctx):
        if "__error__" in config:
            ev.add(url, "-", "-", config["__error__"], False)
            bad.append(f"{url}: its running configuration could not be read ({config['__error__']})")
            continue
        receivers = {str(r.get("name")): r for r in config.get("receivers") or []}
        for where, name in walk_routes(config.get("route") or {}):
            kinds = integrations(receivers[name]) if name in receivers else []
            ok = bool(kinds)
            ev.add(url, where, name or "(none)", ", ".join(kinds) or "-", ok)
            if name not in receivers:
                bad.append(f"{where} names receiver {name!r}, which {url} does not define")
            elif not kinds:
                bad.append(f"{where} ends at receiver {name!r}, which has no integration")
    if bad:
        return CheckResult.failed("; ".join(bad), expected="every route's receiver has an integration", evidence=ev)
    return CheckResult.passed(
        f"all {len(ev.rows)} routes end at a receiver with at least one integration",
        expected="every route's receiver has an integration",
        evidence=ev,
    )


@check(
    "alert-delivery-webhooks-answer",
    group=GROUP,
    needs=("prom",),
    symptom="a webhook receiver does not accept a notification (e.g. answers 404)",
)
def webhooks_answer(ctx: VerifyContext) -> CheckResult:
    ev = Evidence(("receiver", "webhook URL", "test notification answered", "ok"))
    bad = []
    probed = 0
    seen: set[tuple[str, str]] = set()
    for _url, config in running_configs(ctx):
        for receiver in config.get("receivers") or []:
            name = str(receiver.get("name"))
            for hook in receiver.get("webhook_configs") or []:
                target = str(hook.get("url") or "")
                if not target or (name, target) in seen:
                    continue
                seen.add((name, target))
                if not is_loopback(target):
                    ev.add(name, target, "not probed (not a loopback address: never contacted)", "-")
                    continue
                probed += 1
                answer = post(target, probe_notification(name))
                ok = answer.isdigit() and 200 <= int(answer) < 300
                ev.add(name, target, answer, ok)
                if not ok:
                    bad.append(f"receiver {name!r} webhook {target} answered {answer} to a test notification")
    if bad:
        return CheckResult.failed("; ".join(bad), expected="2xx from every loopback webhook", evidence=ev)
    if not probed:
        return CheckResult.skipped(
            "no webhook receiver on a loopback address to probe (others are never contacted)", evidence=ev
        )
    return CheckResult.passed(
        f"{probed} loopback webhook(s) answered a test notification with 2xx",
        expected="2xx from every loopback webhook",
        evidence=ev,
    )


@check(
    "alert-delivery-scrape-authenticates",
    group=GROUP,
    needs=("prom",),
    symptom="a scrape target refuses Prometheus's credentials (401/403): its alerts can never fire",
)
def scrape_authenticates(ctx: VerifyContext) -> CheckResult:
    targets = ctx.prom.active_targets()
    ev = Evidence(("job", "scrape URL", "health", "lastError"))
    bad = []
    for target in targets:
        job = str((target.get("labels") or {}).get("job") or target.get("scrapePool"))
        error = str(target.get("lastError") or "")
        health = str(target.get("health"))
        ev.add(job, target.get("scrapeUrl"), health, error or "-")
        if health == "down" and any(code in error for code in ("401", "403")):
            bad.append(f"job {job} is down: {error}")
    if not targets:
        raise MissingInput(f"Prometheus at {ctx.prom.url} has no active scrape targets")
    if bad:
        return CheckResult.failed(
            "scrape credentials do not authenticate (a literal ${VAR} Prometheus never expands?): " + "; ".join(bad),
            expected="no target down with 401/403",
            evidence=ev,
        )
    return CheckResult.passed(
        f"no scrape of {len(targets)} targets is refused for its credentials",
        expected="no target down with 401/403",
        evidence=ev,
    )
