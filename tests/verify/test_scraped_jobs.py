"""Scrape jobs are the ones Prometheus really scrapes (/api/v1/targets), not only configured ones.

Issue #10 (Deliver 6): with a reachable Prometheus, jobs come from its API. A job in the running
configuration whose every target is dropped by relabelling (or found by an empty service
discovery) scrapes nothing; a prometheus.yml given explicitly that names it must be reported
as differing from what runs. A real Prometheus, its own API.
"""

from __future__ import annotations

from pathlib import Path

from tests.verify._live import start_prometheus
from verify.context import VerifyContext, VerifyOptions

# A job whose only target the relabelling drops: configured, never scraped.
GHOST = """\
  - job_name: ghost
    scrape_interval: 1s
    static_configs:
      - targets: ['127.0.0.1:1']
    relabel_configs:
      - action: drop
        source_labels: [__address__]
        regex: '.*'
"""


def test_a_configured_job_without_targets_is_reported_as_not_scraped(tmp_path: Path) -> None:
    live = start_prometheus(tmp_path, {}, extra=GHOST)
    try:
        given = tmp_path / "given.yml"
        given.write_text("scrape_configs:\n" + GHOST)
        options = VerifyOptions(prometheus_url=live.url, live_facts=True, explicit={"prometheus_config"})
        options.prometheus_config = given
        ctx = VerifyContext(options)
        assert ctx.config_differences() == [
            f"job ghost: in {given}, not scraped by {live.url} (configured there, no active target)"
        ]
    finally:
        live.stop()
