"""Rendering monitoring/ for loopback: targets by job, token file, webhooks, compressed rules.

No processes here except promtool/amtool, which judge the renders as Prometheus would.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from codesync_load.errors import HarnessError
from codesync_load.stack.binaries import find_binary
from codesync_load.stack.compress import compress_expr, compress_rules
from codesync_load.stack.durations import format_duration, parse_duration
from codesync_load.stack.render import MONITORING_DIR, REQUIRED_JOBS, check_configs, render_configs

TARGETS = {job: f"127.0.0.1:{41000 + i}" for i, job in enumerate((*REQUIRED_JOBS, "alertmanager"))}
RANGE_RE = re.compile(r"\[(\w+)\]")


def _render(run_dir: Path, monitoring_dir: Path = MONITORING_DIR, **kwargs) -> object:
    token = run_dir / "metrics-token"
    token.write_text("t0ken")
    return render_configs(
        monitoring_dir,
        run_dir,
        targets=TARGETS,
        alertmanager="127.0.0.1:42000",
        webhook_url="http://127.0.0.1:43000/alerts",
        token_file=token,
        **kwargs,
    )


@pytest.mark.parametrize(
    ("text", "ms", "canonical"),
    [("5m", 300_000, "5m"), ("1h30m", 5_400_000, "1h30m"), ("500ms", 500, "500ms"), ("90s", 90_000, "1m30s")],
)
def test_durations_round_trip(text: str, ms: int, canonical: str) -> None:
    assert parse_duration(text) == ms
    assert format_duration(ms) == canonical


@pytest.mark.parametrize("bad", ["5", "m", "5x", "1s1m", ""])
def test_durations_reject_what_prometheus_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_compress_expr_divides_ranges_and_subqueries_but_not_strings() -> None:
    notes: list[str] = []
    expr = 'rate(x{path=~"/a[5m]"}[5m]) + max_over_time(y[30m:1m])'
    out = compress_expr(expr, 30, 4000, "R", notes)
    assert out == 'rate(x{path=~"/a[5m]"}[10s]) + max_over_time(y[1m:2s])'
    assert notes == []


def test_compress_expr_clamps_to_four_scrape_intervals_and_says_so() -> None:
    notes: list[str] = []
    assert compress_expr("rate(x[5m])", 300, 8000, "HighErrorRate", notes) == "rate(x[8s])"
    assert notes == ["HighErrorRate: range [5m] / 300 = 1s clamped to 8s (4 scrape intervals)"]


def test_compressed_alert_rules_keep_every_rule_and_divide_every_window() -> None:
    source = yaml.safe_load((MONITORING_DIR / "alerts.yml").read_text())
    out, notes = compress_rules(source, 30, 4000)
    assert notes == []
    before = [rule for group in source["groups"] for rule in group["rules"]]
    after = [rule for group in out["groups"] for rule in group["rules"]]
    assert [r["alert"] for r in after] == [r["alert"] for r in before]
    assert len(after) == 10
    for old, new in zip(before, after, strict=True):
        assert parse_duration(new["for"]) == parse_duration(old["for"]) // 30
        assert new["labels"] == old["labels"]
        old_ranges = RANGE_RE.findall(old["expr"])
        assert [parse_duration(r) for r in RANGE_RE.findall(new["expr"])] == [
            parse_duration(r) // 30 for r in old_ranges
        ]
    # The source is untouched (the real durations stay for promtool's rule tests).
    assert yaml.safe_load((MONITORING_DIR / "alerts.yml").read_text()) == source


def test_render_points_every_job_at_its_loopback_port(tmp_path: Path) -> None:
    rendered = _render(tmp_path, scrape_interval="2s", compress=30)
    prom = yaml.safe_load(rendered.prometheus_config.read_text())
    jobs = {job["job_name"]: job for job in prom["scrape_configs"]}
    assert set(jobs) == set(REQUIRED_JOBS)
    for name, job in jobs.items():
        assert job["static_configs"] == [{"targets": [TARGETS[name]]}]
        assert job["scrape_interval"] == "2s"
    for name in ("codesync-backend", "codesync-yjs"):
        assert jobs[name]["authorization"]["credentials_file"] == str(tmp_path / "metrics-token")
    assert prom["global"]["evaluation_interval"] == "2s"
    assert prom["alerting"]["alertmanagers"] == [{"static_configs": [{"targets": ["127.0.0.1:42000"]}]}]
    assert prom["rule_files"] == [str(tmp_path / "rules-alerts.yml")]
    rules = yaml.safe_load((tmp_path / "rules-alerts.yml").read_text())
    high_error = next(r for g in rules["groups"] for r in g["rules"] if r["alert"] == "HighErrorRate")
    assert high_error["for"] == "10s" and "[10s]" in high_error["expr"] and "[5m]" not in high_error["expr"]


def test_render_sends_placeholder_webhooks_to_the_harness_receiver_only(tmp_path: Path) -> None:
    rendered = _render(tmp_path, compress=30)
    am = yaml.safe_load(rendered.alertmanager_config.read_text())
    hooks = {r["name"]: [h["url"] for h in r.get("webhook_configs") or []] for r in am["receivers"]}
    assert hooks == {
        "harness": ["http://127.0.0.1:43000/alerts"],
        "critical-immediate": ["http://127.0.0.1:43000/alerts"],
        "warning-batched": ["http://127.0.0.1:43000/alerts"],
        "info-webhook": ["http://127.0.0.1:43000/alerts"],
    }
    critical = next(r for r in am["receivers"] if r["name"] == "critical-immediate")
    assert critical["slack_configs"][0]["api_url"] == "http://127.0.0.1:9/slack"  # not a harness placeholder
    # Route timers compressed 30x; 0s and 5s floors are clamped to 1s and reported.
    assert (am["route"]["group_wait"], am["route"]["group_interval"]) == ("1s", "10s")
    assert any("route.routes[0].group_wait" in note for note in rendered.notes)


def test_promtool_and_amtool_accept_the_render(tmp_path: Path) -> None:
    rendered = _render(tmp_path, scrape_interval="1s", compress=30)
    check_configs(rendered, find_binary("promtool"), find_binary("amtool"))  # raises on rejection


def test_a_rule_prometheus_rejects_gives_promtools_first_error(tmp_path: Path) -> None:
    monitoring = tmp_path / "monitoring"
    shutil.copytree(MONITORING_DIR, monitoring)
    alerts = monitoring / "alerts.yml"
    alerts.write_text(alerts.read_text().replace('pg_up{job="postgres-exporter"} == 0', "pg_up{job= == 0", 1))
    run = tmp_path / "run"
    run.mkdir()
    rendered = _render(run, monitoring)
    with pytest.raises(HarnessError) as err:
        check_configs(rendered, find_binary("promtool"), find_binary("amtool"))
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("Prometheus rejects the rendered config (")
    assert "parse error" in message and "fix monitoring/prometheus.yml or its rule files" in message


def test_a_missing_job_is_named(tmp_path: Path) -> None:
    monitoring = tmp_path / "monitoring"
    shutil.copytree(MONITORING_DIR, monitoring)
    prom = monitoring / "prometheus.yml"
    text = prom.read_text().replace("job_name: redis-exporter", "job_name: redis")
    prom.write_text(text.replace("redis-exporter:9121", "cache-metrics:9999"))
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(HarnessError, match=r"no scrape job named redis-exporter \(nor one whose target has the"):
        _render(run, monitoring)


def test_a_job_named_otherwise_is_mapped_by_the_guides_port_and_listed(tmp_path: Path) -> None:
    """A user's folder names its Redis job `redis`; its target's port (9121) says what it scrapes."""
    monitoring = tmp_path / "monitoring"
    shutil.copytree(MONITORING_DIR, monitoring)
    prom = monitoring / "prometheus.yml"
    prom.write_text(prom.read_text().replace("job_name: redis-exporter", "job_name: redis"))
    run = tmp_path / "run"
    run.mkdir()
    rendered = _render(run, monitoring)
    assert "redis" in rendered.jobs and "redis-exporter" not in rendered.jobs
    config = yaml.safe_load(rendered.prometheus_config.read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "redis")
    address = job["static_configs"][0]["targets"][0]
    assert f"job redis: redis-exporter:9121 -> {address} (redis-exporter)" in rendered.rewritten


def test_compress_below_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match=r"--compress 0.5 would stretch time"):
        _render(tmp_path, compress=0.5)


def test_postgres_exporter_is_scraped_no_faster_than_it_answers_with_the_database_down(tmp_path: Path) -> None:
    # 1 s elsewhere; postgres-exporter needs ~1 s to answer while PostgreSQL refuses connections
    rendered = _render(tmp_path, scrape_interval="1s", compress=30)
    prom = yaml.safe_load(rendered.prometheus_config.read_text())
    jobs = {job["job_name"]: job for job in prom["scrape_configs"]}
    assert (jobs["postgres-exporter"]["scrape_interval"], jobs["postgres-exporter"]["scrape_timeout"]) == ("2s", "2s")
    assert {name: job["scrape_interval"] for name, job in jobs.items() if name != "postgres-exporter"} == dict.fromkeys(
        set(REQUIRED_JOBS) - {"postgres-exporter"}, "1s"
    )
    assert (
        "job postgres-exporter scrape_interval: 1s -> 2s "
        "(timeout too: postgres-exporter takes ~1 s to answer while its database is down)"
    ) in rendered.rewritten
    # the rule windows fit the slowest job: 4 x 2 s
    assert rendered.notes[0] == "rules compressed 30x (ranges >= 8s)"
    # at 2 s and slower nothing changes
    (tmp_path / "slow").mkdir()
    slow = _render(tmp_path / "slow", scrape_interval="2s", compress=30)
    assert not [line for line in slow.rewritten if "timeout too" in line]


def test_the_compose_uptime_jobs_are_left_to_the_stacks_own_probe(tmp_path: Path) -> None:
    # monitoring/prometheus.yml probes every 60 s / 120 s through the compose service; a render
    # drops both (the stack adds its own), and their 120 s does not stretch the rule windows
    rendered = _render(tmp_path, compress=30)
    prom = yaml.safe_load(rendered.prometheus_config.read_text())
    assert {job["job_name"] for job in prom["scrape_configs"]} == set(REQUIRED_JOBS)
    assert [line for line in rendered.rewritten if line.startswith("job uptime-")] == [
        "job uptime-health: replaced by the stack's own uptime probe job",
        "job uptime-database: replaced by the stack's own uptime probe job",
    ]
    assert rendered.notes[0] == "rules compressed 30x (ranges >= 1m)"  # 4 x the global 15 s
