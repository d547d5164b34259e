"""One healthy local stack for the module: targets up, token, silence, external view, ServiceDown.

The last test stops the twin (ServiceDown must fire and be routed); it runs last in file order.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from codesync_load.errors import HarnessError
from codesync_load.stack import open_stack, promapi
from codesync_load.stack.local import LocalStack
from codesync_load.stack.render import REQUIRED_JOBS
from codesync_load.stack.state import pid_alive, read_state
from codesync_load.stack.webhook import alerts_delivered, read_deliveries
from tests.stack._support import LOCAL_COMPONENTS, Traffic, child_pids, run_cli, run_fixture_probe, wait_for

COMPONENTS = set(LOCAL_COMPONENTS)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    state_dir = tmp_path_factory.mktemp("local-stack")
    local = LocalStack(state_dir=state_dir, compress=30, scrape_interval="1s", twin_args=["--bcrypt-rounds", "4"])
    local.up()
    try:
        yield local
    finally:
        local.down()


def _query(stack: LocalStack, promql: str) -> list[dict]:
    return promapi.get_json(f"{stack.prometheus_url}/api/v1/query?query={requests.utils.quote(promql)}")["data"][
        "result"
    ]


def test_every_prometheus_target_is_up_at_its_components_port(stack: LocalStack) -> None:
    every = promapi.active_targets(stack.prometheus_url)
    # the uptime probe's jobs: the blackbox exporter trying the twin's /health and the database port
    probes = {t["job"]: (t["instance"], urlsplit(t["scrapeUrl"]).port) for t in every if t["job"].startswith("uptime-")}
    blackbox_port = urlsplit(stack.components["blackbox"]["url"]).port
    assert probes == {
        "uptime-health": (f"{stack.api_url}/health", blackbox_port),
        "uptime-database": ("127.0.0.1:5432", blackbox_port),
    }
    targets = [t for t in every if not t["job"].startswith("uptime-")]
    assert sorted(t["job"] for t in targets) == sorted(REQUIRED_JOBS)
    assert {t["job"]: t["health"] for t in targets} == dict.fromkeys(REQUIRED_JOBS, "up")
    port_of = {name: urlsplit(comp["url"]).port for name, comp in stack.components.items()}
    job_component = {
        "codesync-backend": "twin",
        "node-exporter": "node-exporter",
        "postgres-exporter": "postgres-exporter",
        "redis-exporter": "redis-exporter",
        "prometheus": "prometheus",
    }
    for target in targets:
        port = urlsplit(target["scrapeUrl"]).port
        if target["job"] == "codesync-yjs":
            assert port == urlsplit(stack.yjs_url).port
        else:
            assert port == port_of[job_component[target["job"]]]
    assert set(stack.components) == COMPONENTS
    assert all(pid_alive(comp["pid"]) for comp in stack.components.values())
    assert stack.ready()


def test_exporters_reach_postgres_and_redis(stack: LocalStack) -> None:
    assert [float(r["value"][1]) for r in _query(stack, 'pg_up{job="postgres-exporter"}')] == [1.0]
    assert [float(r["value"][1]) for r in _query(stack, 'redis_up{job="redis-exporter"}')] == [1.0]


def test_metrics_are_scraped_with_the_generated_token(stack: LocalStack) -> None:
    assert stack.metrics_token and len(stack.metrics_token) >= 24
    assert requests.get(f"{stack.api_url}/metrics", timeout=5).status_code == 401
    wrong = requests.get(f"{stack.api_url}/metrics", headers={"Authorization": "Bearer wrong"}, timeout=5)
    assert wrong.status_code == 403
    bearer = {"Authorization": f"Bearer {stack.metrics_token}"}
    ok = requests.get(f"{stack.api_url}/metrics", headers=bearer, timeout=5)
    assert ok.status_code == 200 and "codesync_http_requests_total" in ok.text
    token_file = Path(read_state(stack.state_dir)["run_dir"]) / "metrics-token"
    assert token_file.read_text() == stack.metrics_token


def test_healthy_traffic_keeps_error_and_availability_alerts_silent(stack: LocalStack) -> None:
    seen = 'sum(rate(codesync_http_requests_total{job="codesync-backend", route="/api/sessions"}[10s]))'
    errors = 'sum(rate(codesync_http_requests_total{job="codesync-backend", status_code=~"5.."}[10s])) or vector(0)'
    with Traffic(f"{stack.api_url}/api/sessions") as traffic:
        # The compressed rule's windows see the traffic, and no 5xx in it.
        wait_for(lambda: [r for r in _query(stack, seen) if float(r["value"][1]) > 0], 30, "traffic in Prometheus")
        assert [float(r["value"][1]) for r in _query(stack, errors)] == [0.0]
        # Let the rules evaluate over a full compressed window of healthy traffic (10 s).
        evaluated = time.time()
        wait_for(lambda: _last_evaluation(stack, "HighErrorRate") > evaluated + 10, 30, "rule evaluated 10 s later")
    assert set(traffic.codes) == {200} and traffic.codes[200] >= 50
    rules = promapi.get_json(f"{stack.prometheus_url}/api/v1/rules?type=alert")["data"]["groups"]
    states = {rule["name"]: rule["state"] for group in rules for rule in group["rules"]}
    assert states["HighErrorRate"] == "inactive"
    assert states["ServiceDown"] == "inactive"
    held = {a["labels"]["alertname"] for a in promapi.rule_alerts(stack.prometheus_url)}
    assert not held & {"HighErrorRate", "ServiceDown", "PostgreSQLDown", "RedisDown"}
    assert not alerts_delivered(stack.alert_log, "HighErrorRate")
    assert not alerts_delivered(stack.alert_log, "ServiceDown")


def _last_evaluation(stack: LocalStack, alertname: str) -> float:
    """Unix time of the rule's last evaluation, from /api/v1/rules."""
    groups = promapi.get_json(f"{stack.prometheus_url}/api/v1/rules?type=alert")["data"]["groups"]
    rule = next(r for g in groups for r in g["rules"] if r["name"] == alertname)
    stamp = rule["lastEvaluation"]  # RFC 3339 with nanoseconds
    return datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00").timestamp()


def test_external_backend_on_these_urls_starts_nothing(stack: LocalStack, tmp_path: Path) -> None:
    before = child_pids()
    external = open_stack(
        "external",
        api_url=stack.api_url,
        yjs_url=stack.yjs_url,
        prometheus_url=stack.prometheus_url,
        alertmanager_url=stack.alertmanager_url,
        metrics_token=stack.metrics_token,
        state_dir=tmp_path,
    )
    with external:
        assert child_pids() == before
        assert external.ready()
        assert external.components == {
            "api": {"url": stack.api_url, "pid": None},
            "yjs": {"url": stack.yjs_url, "pid": None},
            "prometheus": {"url": stack.prometheus_url, "pid": None},
            "alertmanager": {"url": stack.alertmanager_url, "pid": None},
        }
        assert read_state(tmp_path)["backend"] == "external"
        status = run_cli("stack", "status", "--json", "--state-dir", str(tmp_path))
        assert status.returncode == 0, status.stderr
    assert read_state(tmp_path) is None
    assert child_pids() == before
    assert stack.ready()  # the local stack behind those URLs is untouched


def test_second_up_on_the_same_state_dir_is_refused(stack: LocalStack) -> None:
    pids = sorted({comp["pid"] for comp in stack.components.values()})
    result = run_cli("stack", "up", "--state-dir", str(stack.state_dir))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"codesync-load: error: a stack is already running (pids {' '.join(map(str, pids))}); "
        f"run `codesync-load stack down --state-dir {stack.state_dir}` first"
    ]
    with pytest.raises(HarnessError, match="a stack is already running"):
        open_stack("local", state_dir=stack.state_dir).up()
    # The refusal touched nothing: the first stack's record and processes are intact.
    assert read_state(stack.state_dir)["run_id"] == stack.record()["run_id"]
    assert stack.ready()


def test_fixture_with_external_options_uses_these_urls(stack: LocalStack, tmp_path: Path) -> None:
    before = child_pids()
    result, seen = run_fixture_probe(
        tmp_path,
        "--stack-backend=external",
        f"--api-url={stack.api_url}",
        f"--yjs-url={stack.yjs_url}",
        f"--prometheus-url={stack.prometheus_url}",
        f"--alertmanager-url={stack.alertmanager_url}",
        f"--metrics-token={stack.metrics_token}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert seen["backend"] == "external" and seen["ready"] is True
    assert (seen["api_url"], seen["prometheus_url"], seen["metrics_token"]) == (
        stack.api_url,
        stack.prometheus_url,
        stack.metrics_token,
    )
    assert {c["pid"] for c in seen["components"].values()} == {None}
    assert child_pids() == before
    assert stack.ready()


def test_stopping_the_twin_fires_service_down_on_the_critical_route(stack: LocalStack) -> None:
    assert not alerts_delivered(stack.alert_log, "ServiceDown")
    stack.stop_component("twin")

    def delivered_to() -> set[str]:
        found = alerts_delivered(stack.alert_log, "ServiceDown")
        receivers = {receiver for receiver, alert in found if alert["labels"]["job"] == "codesync-backend"}
        return receivers if {"harness", "critical-immediate"} <= receivers else set()

    receivers = wait_for(delivered_to, 60, "ServiceDown delivered to harness and critical-immediate")
    assert receivers == {"harness", "critical-immediate"}
    delivered = alerts_delivered(stack.alert_log, "ServiceDown")
    alert = next(a for _, a in delivered if a["labels"]["job"] == "codesync-backend")
    assert alert["labels"]["severity"] == "critical"
    assert alert["labels"]["instance"] == urlsplit(stack.api_url).netloc
    groups = promapi.alertmanager_groups(stack.alertmanager_url)
    named = {
        g["receiver"]["name"] for g in groups if any(a["labels"]["alertname"] == "ServiceDown" for a in g["alerts"])
    }
    assert named == {"harness", "critical-immediate"}
    # Every delivery went to the path the placeholder named.
    assert {d["path"] for d in read_deliveries(stack.alert_log)} == {"/alerts"}
