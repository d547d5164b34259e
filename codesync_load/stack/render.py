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
from codesync_load.stack.blackbox import DATABASE_JOB, HEALTH_JOB
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
# Where the monitoring guide (and CodeSync's compose file) puts each job: a user's folder
# whose job is named otherwise is mapped by the port its target names.
WELL_KNOWN_PORTS = {
    4000: "codesync-backend",
    4001: "codesync-yjs",
    9100: "node-exporter",
    9187: "postgres-exporter",
    9121: "redis-exporter",
    9090: "prometheus",
    9093: "alertmanager",
}
# postgres-exporter (Debian's 0.11) answers a scrape about 1 s late while PostgreSQL refuses
# connections (measured: 1.00 s, whatever connect_timeout the DSN sets). A 1 s scrape timeout
# then loses the whole scrape, pg_up goes missing instead of 0, and PostgreSQLDown can never
# fire. So that job is scraped no faster than this, with a timeout of the same length.
SLOW_WHEN_DOWN_MS = {"postgres-exporter": 2000}
_SD_KEYS = ("static_configs", "file_sd_configs", "dns_sd_configs", "docker_sd_configs", "kubernetes_sd_configs")


@dataclass
class Rendered:
    prometheus_config: Path
    alertmanager_config: Path
    rule_files: list[Path]
    jobs: list[str]
    notes: list[str] = field(default_factory=list)
    webhook_urls: list[str] = field(default_factory=list)
    rewritten: list[str] = field(default_factory=list)  # every place changed, "what: before -> after"
    rule_sources: list[Path] = field(default_factory=list)


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


def _job_role(job: dict, targets: dict[str, str]) -> str | None:
    """Which component a job scrapes: its name when the stack knows it, else its target's port."""
    name = job.get("job_name")
    if name in targets:
        return name
    for config in job.get("static_configs") or []:
        for address in config.get("targets") or []:
            port = str(address).rsplit(":", 1)[-1]
            role = WELL_KNOWN_PORTS.get(int(port)) if port.isdigit() else None
            if role in targets:
                return role
    return None


def _old_targets(job: dict) -> str:
    found = [str(t) for c in job.get("static_configs") or [] for t in c.get("targets") or []]
    return ", ".join(found) or "(service discovery)"


def _slow_floor(job: dict, role: str, glob: dict, rewritten: list[str]) -> None:
    """Raise the interval and timeout of a job in SLOW_WHEN_DOWN_MS to its floor (in place)."""
    floor = SLOW_WHEN_DOWN_MS.get(role)
    interval = job.get("scrape_interval") or glob.get("scrape_interval") or "1m"
    if floor is None or parse_duration(interval) >= floor:
        return
    job["scrape_interval"] = job["scrape_timeout"] = format_duration(floor)
    rewritten.append(
        f"job {job.get('job_name')} scrape_interval: {interval} -> {job['scrape_interval']} "
        f"(timeout too: {role} takes ~1 s to answer while its database is down)"
    )


def render_prometheus(
    source: dict,
    *,
    targets: dict[str, str],
    alertmanager: str,
    token_file: Path | None,
    rule_files: list[Path],
    scrape_interval: str | None,
    notes: list[str],
    rewritten: list[str] | None = None,
    required: tuple[str, ...] = REQUIRED_JOBS,
) -> tuple[dict, list[str]]:
    """The prometheus.yml for the stack's targets; returns (config, kept job names).

    `targets` maps a component ("codesync-backend", ...) to "host:port" or to a URL whose
    scheme is kept (an https target is scraped over https). A job is matched by its name, else
    by the guide's port of its target. `token_file` None: the jobs' credentials are dropped
    (no token was given). Every change is appended to `rewritten`.
    """
    rewritten = rewritten if rewritten is not None else []
    config = copy.deepcopy(source)
    glob = config.setdefault("global", {})
    if scrape_interval:
        interval_ms = parse_duration(scrape_interval)
        if glob.get("scrape_interval") != scrape_interval:
            rewritten.append(f"global scrape_interval: {glob.get('scrape_interval', '1m')} -> {scrape_interval}")
        glob["scrape_interval"] = scrape_interval
        glob["evaluation_interval"] = scrape_interval
        if glob.get("scrape_timeout") and parse_duration(glob["scrape_timeout"]) > interval_ms:
            glob["scrape_timeout"] = scrape_interval
    kept = []
    roles = set()
    for job in config.get("scrape_configs") or []:
        name = job.get("job_name")
        role = _job_role(job, targets)
        if role is None or role in roles:
            notes.append(f"prometheus job {name!r} dropped: the local stack runs nothing for it")
            rewritten.append(f"job {name}: dropped (nothing runs for it here)")
            continue
        roles.add(role)
        before = _old_targets(job)
        for key in _SD_KEYS:
            job.pop(key, None)
        parts = urlsplit(targets[role]) if "://" in targets[role] else None
        address = parts.netloc if parts else targets[role]
        job["static_configs"] = [{"targets": [address]}]
        if before != address:
            rewritten.append(f"job {name}: {before} -> {address}" + (f" ({role})" if role != name else ""))
        if scrape_interval:
            if job.get("scrape_interval") and job["scrape_interval"] != scrape_interval:
                rewritten.append(f"job {name} scrape_interval: {job['scrape_interval']} -> {scrape_interval}")
            job["scrape_interval"] = scrape_interval
            if job.get("scrape_timeout") and parse_duration(job["scrape_timeout"]) > parse_duration(scrape_interval):
                job["scrape_timeout"] = scrape_interval
        _slow_floor(job, role, glob, rewritten)
        auth = job.get("authorization")
        if isinstance(auth, dict) and ("credentials_file" in auth or "credentials" in auth):
            auth.pop("credentials", None)
            if token_file is None:
                job.pop("authorization")
                rewritten.append(f"job {name}: bearer token dropped (no --metrics-token given)")
            else:
                before = auth.get("credentials_file", "(inline)")
                if before != str(token_file):
                    rewritten.append(f"job {name} credentials: {before} -> {token_file}")
                auth["credentials_file"] = str(token_file)
        if "bearer_token_file" in job or "bearer_token" in job:
            job.pop("bearer_token", None)
            if token_file is None:
                job.pop("bearer_token_file", None)
                rewritten.append(f"job {name}: bearer token dropped (no --metrics-token given)")
            else:
                before = job.get("bearer_token_file", "(inline)")
                rewritten.append(f"job {name} bearer_token_file: {before} -> {token_file}")
                job["bearer_token_file"] = str(token_file)
        scheme = parts.scheme.replace("ws", "http") if parts else "http"
        if job.get("scheme", "http") != scheme:
            rewritten.append(f"job {name} scheme: {job.get('scheme')} -> {scheme}")
        job["scheme"] = scheme
        if scheme == "http":
            job.pop("tls_config", None)
        kept.append(name)
    config["scrape_configs"] = [job for job in config.get("scrape_configs") or [] if job.get("job_name") in kept]
    missing = sorted(set(required) & set(targets) - roles)
    if missing:
        raise HarnessError(
            f"prometheus.yml has no scrape job named {', '.join(missing)} (nor one whose target has the guide's port); "
            "add the job or fix its job_name (the local stack maps targets by job name)"
        )
    if [str(p) for p in config.get("rule_files") or []] != [str(p) for p in rule_files]:
        rewritten.append(
            f"rule_files: {', '.join(map(str, config.get('rule_files') or [])) or 'none'} -> "
            f"{len(rule_files)} rendered copies ({', '.join(p.name for p in rule_files)})"
        )
    config["rule_files"] = [str(path) for path in rule_files]
    rewritten.append(f"alerting: Alertmanager -> {alertmanager}")
    config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    for key in ("remote_write", "remote_read"):
        if config.pop(key, None) is not None:
            rewritten.append(f"{key}: dropped")
    return config, kept


def without_probe_jobs(source: dict, rewritten: list[str]) -> dict:
    """`source` without the uptime probe's jobs (uptime-health, uptime-database).

    Why: they are written for compose (the blackbox-exporter service, the guide's 60 s and
    120 s); every stack that renders adds its own, at its own addresses and scaled intervals
    (codesync_load/stack/blackbox.py). Left in, they would also count as the slowest scrape
    and stretch every compressed rule window to 4 x 120 s."""
    names = (HEALTH_JOB, DATABASE_JOB)
    jobs = source.get("scrape_configs") or []
    if not any(job.get("job_name") in names for job in jobs):
        return source
    out = copy.deepcopy(source)
    out["scrape_configs"] = [job for job in jobs if job.get("job_name") not in names]
    for job in jobs:
        if job.get("job_name") in names:
            rewritten.append(f"job {job['job_name']}: replaced by the stack's own uptime probe job")
    return out


def add_missing_job(source: dict, role: str, like: str, notes: list[str]) -> dict:
    """A copy of `source` with a job named `role` cloned from job `like` when no job scrapes `role`.

    Why: CodeSync's Yjs server is a second process with its own /metrics, and the guide's
    prometheus.yml scrapes only the API; the reconciliation needs both.
    """
    jobs = source.get("scrape_configs") or []
    targets = {role: "", like: ""}
    if any(_job_role(job, targets) == role for job in jobs):
        return source
    model = next((job for job in jobs if _job_role(job, targets) == like), None)
    if model is None:
        return source
    out = copy.deepcopy(source)
    clone = copy.deepcopy(model)
    clone["job_name"] = role
    out["scrape_configs"].append(clone)
    notes.append(f"prometheus job {role!r} added (a copy of {model.get('job_name')!r}): the file scrapes no {role}")
    return out


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
                replaced.append(f"{receiver.get('name')}: {url} -> {hook['url']}")
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
    token_file: Path | None,
    scrape_interval: str | None = None,
    compress: float = 1.0,
    required: tuple[str, ...] = REQUIRED_JOBS,
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
    rewritten: list[str] = []
    source = without_probe_jobs(_load_yaml(monitoring_dir / "prometheus.yml"), rewritten)
    if "codesync-yjs" in targets:
        source = add_missing_job(source, "codesync-yjs", "codesync-backend", notes)
    scrape_source = copy.deepcopy(source)
    if scrape_interval:
        scrape_source.setdefault("global", {})["scrape_interval"] = scrape_interval
        for job in scrape_source.get("scrape_configs") or []:
            job["scrape_interval"] = scrape_interval
    for job in scrape_source.get("scrape_configs") or []:
        _slow_floor(job, _job_role(job, targets) or "", scrape_source.get("global") or {}, [])
    min_range_ms = 4 * max_scrape_interval_ms(scrape_source)

    rule_paths: list[Path] = []
    rule_sources: list[Path] = []
    for pattern in source.get("rule_files") or []:
        given = Path(str(pattern))
        if given.is_absolute():
            matches = sorted(given.parent.glob(given.name))
        else:  # relative to the folder, as Prometheus reads it; else by name (compose mounts elsewhere)
            matches = sorted(monitoring_dir.glob(str(pattern))) or sorted(monitoring_dir.glob(given.name))
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
            rule_sources.append(rule_source.resolve())
            out = run_dir / f"rules-{rule_source.name}"
            if out in rule_paths:  # two folders' files of one name (rules/*.yml and alerts/*.yml)
                out = run_dir / f"rules-{len(rule_paths) + 1}-{rule_source.name}"
            rule_paths.append(_write_yaml(out, rules, header))
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
        rewritten=rewritten,
        required=required,
    )
    prom_path = _write_yaml(run_dir / "prometheus.yml", prom, "# Rendered for the local stack.\n")
    am, hooks = render_alertmanager(
        _load_yaml(monitoring_dir / "alertmanager.yml"), webhook_url=webhook_url, compress=compress, notes=notes
    )
    rewritten.extend(f"alertmanager webhook {hook}" for hook in hooks)
    am_path = _write_yaml(run_dir / "alertmanager.yml", am, "# Rendered for the local stack.\n")
    return Rendered(prom_path, am_path, rule_paths, jobs, notes, hooks, rewritten, rule_sources)


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
