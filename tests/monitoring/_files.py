"""Paths, loaders and tool runners shared by the monitoring tests.

    >>> rules = alert_rules(MONITORING / "alerts.yml")
    >>> result = run_tool(["promtool", "check", "rules", str(MONITORING / "alerts.yml")])

Tools (promtool, amtool, docker) are real binaries: a test that needs a missing one is
skipped with the Debian package that provides it, never faked.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from codesync_load.contract import Contract, MetricSpec

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "monitoring"
GUIDE = MONITORING / "guide"
COMPOSE_FILE = REPO / "docker-compose.test.yml"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "codesync.json"
GUIDE_DASHBOARD = GUIDE / "codesync.json"
GUIDE_CONTRACT = REPO / "codesync_load" / "contract" / "guide.toml"

ALERT_NAMES = frozenset(
    {
        "HighErrorRate",
        "HighResponseTime",
        "HighMemoryUsage",
        "HighCPUUsage",
        "HighRateLimitHits",
        "WebSocketConnectionFailures",
        "LowDiskSpace",
        "ServiceDown",
        "PostgreSQLDown",
        "RedisDown",
    }
)
PANEL_TITLES = (
    "Request Rate",
    "Error Rate",
    "Response Time (p95)",
    "Active WebSocket Connections",
    "Active Sessions",
    "Memory Usage",
    "CPU Usage",
    "Database Queries",
    "Redis Operations",
    "Rate Limit Hits",
)
CODESYNC_JOBS = ("codesync-backend", "codesync-yjs")
# Series that come from an exporter, by name prefix, and the job that scrapes that exporter.
EXPORTER_PREFIXES = {"node_": "node-exporter", "pg_": "postgres-exporter", "redis_": "redis-exporter"}
TOOL_PACKAGES = {"promtool": "prometheus", "amtool": "prometheus-alertmanager", "docker": "docker.io"}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def alert_rules(path: Path) -> list[dict[str, Any]]:
    """Every alerting rule of a Prometheus rule file, across its groups."""
    return [rule for group in load_yaml(path)["groups"] for rule in group["rules"] if "alert" in rule]


def require_tool(name: str) -> str:
    """The tool's path, or skip naming the Debian package that installs it."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed; apt-get install {TOOL_PACKAGES.get(name, name)}")
    return path


def run_tool(argv: list[str], *, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a real tool with a deadline; the caller asserts on returncode and output."""
    require_tool(argv[0])
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def family(name: str, contract: Contract) -> MetricSpec | None:
    """The contract family a series name belongs to (x_bucket/_sum/_count -> histogram x)."""
    for spec in contract.metrics:
        if name == spec.name:
            return spec
        if spec.type == "histogram" and name in {f"{spec.name}_{s}" for s in ("bucket", "sum", "count")}:
            return spec
    return None


def exporter_job(name: str) -> str | None:
    """The job of the exporter that exports series `name`, if it is an exporter's series."""
    for prefix, job in EXPORTER_PREFIXES.items():
        if name.startswith(prefix):
            return job
    return None


_DEFAULT = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def with_defaults(text: str) -> str:
    """Compose-style ${VAR:-default} interpolation using only the defaults (not the environment)."""
    return _DEFAULT.sub(lambda m: m.group(2) or "", text)
