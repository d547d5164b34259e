"""Render monitoring/ configs for a stack on loopback ports, and check them with promtool.

    >>> result = render_configs(MONITORING_DIR, run_dir, targets={"codesync-backend": "127.0.0.1:40123", ...},
    ...                         alertmanager="127.0.0.1:40200", webhook_url="http://127.0.0.1:40300/alerts",
    ...                         token_file=run_dir / "metrics-token", scrape_interval="2s", compress=30)
    >>> result.prometheus_config, result.notes

monitoring/ is written for compose (targets are service hostnames, the token file sits at a
container path, the webhook is a placeholder). The render keeps every rule, route and label
and replaces only what names a place: each job's targets (by job name), the credentials
file, the Alertmanager address, placeholder webhook URLs; optionally the scrape interval and
a time-compressed copy of the rule files. What was dropped or clamped is listed in `notes`.
"""

from __future__ import annotations

import copy
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import yaml

from codesync_load.errors import HarnessError
from codesync_load.stack.compress import compress_routes, compress_rules
from codesync_load.stack.durations import format_duration, parse_duration

REPO_ROOT = Path(__file__).resolve().parents[2]
MONITORING_DIR = REPO_ROOT / "monitoring"

# The harness receiver's placeholder in monitoring/alertmanager.yml, and host names that
# can only be placeholders (RFC 2606 / 6761 reserved names).
PLACEHOLDER_NETLOCS = {"127.0.0.1:9099", "localhost:9099"}
_PLACEHOLDER_SUFFIXES = (".invalid", ".example", ".test", "example.com", "example.org", "example.net")
# Alertmanager's built-in timers, made explicit so that compression applies to them too.
_ROUTE_DEFAULTS = {"group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h"}
# The jobs the stack must scrape (monitoring/prometheus.yml names them so).
REQUIRED_JOBS = (
    "codesync-backend",
    "codesync-yjs",
    "node-exporter",
    "postgres-exporter",
    "redis-exporter",
    "prometheus",
)
_SD_KEYS = ("static_configs", "file_sd_configs", "dns_sd_configs", "docker_sd_configs", "kubernetes_sd_configs")


@dataclass
class Rendered:
    prometheus_config: Path
    alertmanager_config: Path
    rule_files: list[Path]
    jobs: list[str]
    notes: list[str] = field(default_factory=list)
    webhook_urls: list[str] = field(default_factory=list)


def _load_yaml(path: Path) -> dict:
    if not path.exists():
        raise HarnessError(f"{path} is missing; restore it from git or pass another monitoring directory")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        first = str(err).splitlines()[0]
        raise HarnessError(f"{path} is not valid YAML ({first}); fix the file") from None
    if not isinstance(data, dict):
        raise HarnessError(f"{path} holds no YAML mapping; fix the file")
    return data


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (PromQL expressions) as `|` blocks, readable as in the source."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str_representer)


def _write_yaml(path: Path, data: dict, header: str = "") -> Path:
    path.write_text(header + yaml.dump(data, Dumper=_BlockDumper, sort_keys=False, width=200))
    return path


def is_placeholder_url(url: str) -> bool:
    """True for the harness placeholder and for reserved example hosts."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.netloc.lower() in PLACEHOLDER_NETLOCS or host.endswith(_PLACEHOLDER_SUFFIXES)


def max_scrape_interval_ms(config: dict) -> int:
    """The longest scrape interval of a Prometheus config (global default 1m as Prometheus)."""
    global_ms = parse_duration((config.get("global") or {}).get("scrape_interval", "1m"))
    intervals = [global_ms]
    for job in config.get("scrape_configs") or []:
        if job.get("scrape_interval"):
            intervals.append(parse_duration(job["scrape_interval"]))
    return max(intervals)


def render_prometheus(
    source: dict,
    *,
    targets: dict[str, str],
    alertmanager: str,
    token_file: Path,
    rule_files: list[Path],
    scrape_interval: str | None,
    notes: list[str],
) -> tuple[dict, list[str]]:
    """The prometheus.yml for loopback targets; returns (config, kept job names)."""
    config = copy.deepcopy(source)
    glob = config.setdefault("global", {})
    if scrape_interval:
        interval_ms = parse_duration(scrape_interval)
        glob["scrape_interval"] = scrape_interval
        glob["evaluation_interval"] = scrape_interval
        if glob.get("scrape_timeout") and parse_duration(glob["scrape_timeout"]) > interval_ms:
            glob["scrape_timeout"] = scrape_interval
    kept = []
    for job in config.get("scrape_configs") or []:
        name = job.get("job_name")
        if name not in targets:
            notes.append(f"prometheus job {name!r} dropped: the local stack runs nothing for it")
            continue
        for key in _SD_KEYS:
            job.pop(key, None)
        job["static_configs"] = [{"targets": [targets[name]]}]
        if scrape_interval:
            job["scrape_interval"] = scrape_interval
            if job.get("scrape_timeout") and parse_duration(job["scrape_timeout"]) > parse_duration(scrape_interval):
                job["scrape_timeout"] = scrape_interval
        auth = job.get("authorization")
        if isinstance(auth, dict) and ("credentials_file" in auth or "credentials" in auth):
            auth.pop("credentials", None)
            auth["credentials_file"] = str(token_file)
        if "bearer_token_file" in job or "bearer_token" in job:
            job.pop("bearer_token", None)
            job["bearer_token_file"] = str(token_file)
        job["scheme"] = "http"
        job.pop("tls_config", None)
        kept.append(name)
    config["scrape_configs"] = [job for job in config.get("scrape_configs") or [] if job.get("job_name") in kept]
    missing = sorted(set(REQUIRED_JOBS) & set(targets) - set(kept))
    if missing:
        raise HarnessError(
            f"monitoring/prometheus.yml has no scrape job named {', '.join(missing)}; "
            "add the job or fix its job_name (the local stack maps targets by job name)"
        )
    config["rule_files"] = [str(path) for path in rule_files]
    config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    config.pop("remote_write", None)
    config.pop("remote_read", None)
    return config, kept


def render_alertmanager(source: dict, *, webhook_url: str, compress: float, notes: list[str]) -> tuple[dict, list[str]]:
    """alertmanager.yml with placeholder webhooks pointed at the harness receiver."""
    config = copy.deepcopy(source)
    base = urlsplit(webhook_url)
    replaced: list[str] = []
    for receiver in config.get("receivers") or []:
        for hook in receiver.get("webhook_configs") or []:
            url = hook.get("url")
            if url and is_placeholder_url(url):
                path = urlsplit(url).path or "/"
                hook["url"] = urlunsplit((base.scheme, base.netloc, path, "", ""))
                replaced.append(f"{receiver.get('name')}: {hook['url']}")
    route = config.setdefault("route", {})
    if compress > 1:
        for key, default in _ROUTE_DEFAULTS.items():
            route.setdefault(key, default)
        compress_routes(route, compress, notes)
    return config, replaced


def render_configs(
    monitoring_dir: Path,
    run_dir: Path,
    *,
    targets: dict[str, str],
    alertmanager: str,
    webhook_url: str,
    token_file: Path,
    scrape_interval: str | None = None,
    compress: float = 1.0,
) -> Rendered:
    """Write prometheus.yml, the rule files and alertmanager.yml into `run_dir`."""
    if scrape_interval:
        try:
            parse_duration(scrape_interval)
        except ValueError as err:
            raise HarnessError(f"--scrape-interval {scrape_interval!r}: {err}") from None
    if compress < 1:
        raise HarnessError(f"--compress {compress:g} would stretch time; give a factor >= 1 (e.g. 30)")
    notes: list[str] = []
    source = _load_yaml(monitoring_dir / "prometheus.yml")
    scrape_source = copy.deepcopy(source)
    if scrape_interval:
        scrape_source.setdefault("global", {})["scrape_interval"] = scrape_interval
        for job in scrape_source.get("scrape_configs") or []:
            job["scrape_interval"] = scrape_interval
    min_range_ms = 4 * max_scrape_interval_ms(scrape_source)

    rule_paths: list[Path] = []
    for pattern in source.get("rule_files") or []:
        name = Path(str(pattern)).name
        matches = sorted(monitoring_dir.glob(name))
        if not matches:
            raise HarnessError(f"rule file {pattern!r} of prometheus.yml not found in {monitoring_dir}; fix rule_files")
        for rule_source in matches:
            rules, clamps = compress_rules(_load_yaml(rule_source), compress, min_range_ms)
            notes.extend(clamps)
            header = (
                f"# Rendered from {rule_source} with every range and `for:` divided by {compress:g}.\n"
                if compress > 1
                else f"# Rendered from {rule_source}.\n"
            )
            rule_paths.append(_write_yaml(run_dir / f"rules-{rule_source.name}", rules, header))
    if compress > 1:
        notes.insert(0, f"rules compressed {compress:g}x (ranges >= {format_duration(min_range_ms)})")

    prom, jobs = render_prometheus(
        source,
        targets=targets,
        alertmanager=alertmanager,
        token_file=token_file,
        rule_files=rule_paths,
        scrape_interval=scrape_interval,
        notes=notes,
    )
    prom_path = _write_yaml(run_dir / "prometheus.yml", prom, "# Rendered for the local stack.\n")
    am, hooks = render_alertmanager(
        _load_yaml(monitoring_dir / "alertmanager.yml"), webhook_url=webhook_url, compress=compress, notes=notes
    )
    am_path = _write_yaml(run_dir / "alertmanager.yml", am, "# Rendered for the local stack.\n")
    return Rendered(prom_path, am_path, rule_paths, jobs, notes, hooks)


def _first_error(output: str) -> str:
    """The line of promtool/amtool output that says what is wrong (not a bare "FAILED:")."""
    lines = [line.strip() for line in output.splitlines() if line.strip() and line.strip().rstrip(":") != "FAILED"]
    for words in (("error", "invalid", "unknown", "cannot", "parse"), ("failed",)):
        for line in lines:
            if any(word in line.lower() for word in words):
                return line
    return lines[-1] if lines else "no output"


def check_configs(rendered: Rendered, promtool: str, amtool: str | None) -> None:
    """Run `promtool check config` (which checks the rule files too) and `amtool check-config`."""
    result = subprocess.run(
        [promtool, "check", "config", str(rendered.prometheus_config)], capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        raise HarnessError(
            f"Prometheus rejects the rendered config ({_first_error(result.stdout + result.stderr)}); "
            f"fix monitoring/prometheus.yml or its rule files (render: {rendered.prometheus_config})"
        )
    if amtool:
        result = subprocess.run(
            [amtool, "check-config", str(rendered.alertmanager_config)], capture_output=True, text=True, timeout=60
        )
        if result.returncode != 0:
            raise HarnessError(
                f"Alertmanager rejects the rendered config ({_first_error(result.stdout + result.stderr)}); "
                f"fix monitoring/alertmanager.yml (render: {rendered.alertmanager_config})"
            )
