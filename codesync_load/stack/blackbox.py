"""The uptime witness: Debian's blackbox exporter probing /health and the database port.

    >>> cfg = write_config(run_dir)                                  # http_health and tcp_connect modules
    >>> jobs = probe_jobs("http://127.0.0.1:4000", "127.0.0.1:5432", "127.0.0.1:9115", factor=10)
    >>> add_jobs(run_dir / "prometheus.yml", jobs)                   # scraped by our Prometheus

CodeSync's guide has Uptime Kuma watch `/health` every 60 s with 3 retries and PostgreSQL's
port every 120 s. The ecosystem's prober for a Prometheus stack is the blackbox exporter: each
scrape of `/probe?module=...&target=...` is one try, and its `probe_success` and
`probe_duration_seconds` land in Prometheus as series of the jobs below. The retry semantics
(down only after RETRIES failed tries in a row) are applied to those raw samples by
`codesync_load.uptime`, so what the probe saw stays in Prometheus and is read from there.

Intervals are the guide's divided by the stack's time factor (see `interval_factor`): the same
scaling the rules get from `--compress`, or the ratio of the guide's 10 s API scrape to a
shorter `--scrape-interval`, so a 30 s CI run sees a handful of tries instead of none.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import yaml

from codesync_load.stack.durations import format_duration, parse_duration

BINARY = "prometheus-blackbox-exporter"
# The guide's monitors (Uptime Kuma): /health every 60 s, PostgreSQL's port every 120 s, 3 retries.
HEALTH_JOB = "uptime-health"
DATABASE_JOB = "uptime-database"
GUIDE_INTERVALS_MS = {HEALTH_JOB: 60_000, DATABASE_JOB: 120_000}
RETRIES = 3
# The guide's scrape interval of CodeSync's own /metrics: a stack scraping faster is that much faster.
GUIDE_SCRAPE_MS = 10_000
MIN_INTERVAL_MS = 1000

# The module file (http_health, tcp_connect), shared with the compose stack's blackbox-exporter.
MODULES_FILE = Path(__file__).resolve().parents[2] / "monitoring" / "blackbox.yml"


def interval_factor(compress: float, scrape_interval: str | None) -> float:
    """How much faster than the guide this stack runs: --compress, or 10 s / --scrape-interval."""
    factor = max(1.0, float(compress or 1.0))
    if scrape_interval:
        factor = max(factor, GUIDE_SCRAPE_MS / max(1, parse_duration(scrape_interval)))
    return factor


def probe_interval_ms(job: str, factor: float) -> int:
    """The guide's interval of `job` divided by `factor`, whole seconds, at least 1 s."""
    scaled = int(GUIDE_INTERVALS_MS[job] / max(1.0, factor)) // 1000 * 1000
    return max(MIN_INTERVAL_MS, scaled)


def write_config(run_dir: Path) -> Path:
    """A copy of the module file (monitoring/blackbox.yml) in `run_dir`, kept with the run's configs."""
    path = Path(run_dir) / "blackbox.yml"
    path.write_text(MODULES_FILE.read_text())
    return path


def database_address(dsn: str) -> str:
    """host:port of a PostgreSQL URL (5432 when it names none)."""
    parts = urlsplit(dsn)
    return f"{parts.hostname or '127.0.0.1'}:{parts.port or 5432}"


def probe_jobs(api_url: str, database: str | None, exporter: str, factor: float) -> list[dict]:
    """Prometheus scrape jobs: one try of each probe per (scaled) guide interval.

    The probed address becomes the `instance` label, so a verdict names what was probed, not
    the exporter; the timeout is the interval (the exporter leaves itself half a second of it).
    """
    wanted = [(HEALTH_JOB, "http_health", api_url.rstrip("/") + "/health")]
    if database:
        wanted.append((DATABASE_JOB, "tcp_connect", database))
    jobs = []
    for job, module, target in wanted:
        interval = format_duration(probe_interval_ms(job, factor))
        jobs.append(
            {
                "job_name": job,
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "metrics_path": "/probe",
                "params": {"module": [module]},
                "static_configs": [{"targets": [target]}],
                "relabel_configs": [
                    {"source_labels": ["__address__"], "target_label": "__param_target"},
                    {"source_labels": ["__param_target"], "target_label": "instance"},
                    {"target_label": "__address__", "replacement": exporter},
                ],
            }
        )
    return jobs


def add_jobs(prometheus_config: Path, jobs: list[dict]) -> list[str]:
    """Append `jobs` to a rendered prometheus.yml (replacing jobs of the same name); their names."""
    config = yaml.safe_load(prometheus_config.read_text()) or {}
    names = {job["job_name"] for job in jobs}
    kept = [job for job in config.get("scrape_configs") or [] if job.get("job_name") not in names]
    config["scrape_configs"] = kept + jobs
    header = "# Rendered for the local stack; uptime probe jobs added (codesync_load/stack/blackbox.py).\n"
    prometheus_config.write_text(header + yaml.safe_dump(config, sort_keys=False, width=200))
    return [job["job_name"] for job in jobs]


def argv(binary: str, config: Path, address: str) -> list[str]:
    """The exporter's command line: its module file and a loopback listen address."""
    return [binary, f"--config.file={config}", f"--web.listen-address={address}"]
