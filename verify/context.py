"""Everything a check may need, loaded on first use and named for the verdict table.

    >>> ctx = VerifyContext(VerifyOptions(run_dir=Path("reports/runs/r1"), prometheus_url="http://127.0.0.1:9090"))
    >>> ctx.rules[0].name, ctx.window.plateau, ctx.exported.has("up")
    ('HighErrorRate', (1700000004.0, 1700000014.0), True)

Inputs come from options (files default to monitoring/, the contract to the backend's
names) and are read lazily, so a run without a Prometheus still gets every static check and
a clear "skipped: no Prometheus" for the rest. `require(name)` raises MissingInput for an
input that was not given; an input that was given but cannot be read raises HarnessError
(bad path, unreachable URL), which ends the whole verification with one line and exit 2.
A Prometheus that answered and then failed (verify.prom.PrometheusLost) marks only the checks
that needed it as `error`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from codesync_load.contract import Contract, ContractError, load_contract
from codesync_load.errors import HarnessError
from codesync_load.ledger import Ledger, LedgerError
from codesync_load.promql import parse_duration_s
from verify.assets import Dashboard, Rule, load_dashboard, load_rules, load_yaml, scrape_intervals
from verify.checks.base import MissingInput
from verify.expectations import Expectations, load_expectations
from verify.exported import ExportedSeries
from verify.prom import Prom, PrometheusLost
from verify.windows import LoadWindow

REPO_ROOT = Path(__file__).resolve().parent.parent
MONITORING = REPO_ROOT / "monitoring"


@dataclass
class VerifyOptions:
    """What `codesync-load verify` and `pytest verify` accept; None means "not given"."""

    run_dir: Path | None = None
    prometheus_url: str | None = None
    rules: list[Path] = field(default_factory=lambda: [MONITORING / "alerts.yml"])
    rule_tests: list[Path] | None = None  # default: <rules dir>/tests/*.yml
    dashboard: Path | None = MONITORING / "grafana" / "dashboards" / "codesync.json"
    prometheus_config: Path | None = MONITORING / "prometheus.yml"
    alertmanager_config: Path | None = MONITORING / "alertmanager.yml"
    contract: Path | None = None
    expectations: Path | None = None
    scrape_targets: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # job -> (url, token)
    settle_timeout_s: float = 30.0
    promtool: str = "promtool"
    # Facts from the live system: when the Prometheus answers, its running config and rule
    # files are the inputs (not files on disk) unless a file was given explicitly (`explicit`
    # names those options); a given file is then compared with what runs (config_differences).
    live_facts: bool = False
    explicit: set[str] = field(default_factory=set)


def monitoring_options(options: VerifyOptions, monitoring: dict[str, Any] | None) -> VerifyOptions:
    """Point the file inputs at the monitoring files a recorded stack runs (its own folder's
    rules, alertmanager.yml, prometheus.yml, dashboard) instead of the harness's monitoring/.

    Why: checks judged against the harness's files while the user's run would be verdicts
    about files nobody deployed. Only what the record names is replaced.
    """
    if not monitoring:
        return options
    if monitoring.get("rule_files"):
        options.rules = [Path(p) for p in monitoring["rule_files"]]
    for name in ("alertmanager_config", "prometheus_config", "dashboard"):
        if monitoring.get(name):
            setattr(options, name, Path(monitoring[name]))
    return options


def _exists(path: Path | None, what: str, option: str) -> Path:
    if path is None:
        raise MissingInput(f"no {what} given ({option})")
    if not Path(path).exists():
        raise HarnessError(f"{what} {path} does not exist; pass an existing file with {option}")
    return Path(path)


class VerifyContext:
    """Lazily loaded inputs shared by all checks of one verification."""

    def __init__(self, options: VerifyOptions) -> None:
        self.options = options
        self.artifacts: dict[str, Path] = {}  # files checks wrote (generated promtool tests ...)

    # -- naming --------------------------------------------------------------------------
    def require(self, need: str) -> Any:
        """Load one input by name; MissingInput when it was not given."""
        return getattr(self, need)

    def describe(self, need: str) -> str:
        try:
            return self._describe(need)
        except PrometheusLost as lost:  # naming a live input asks a Prometheus that went away
            return f"? ({lost})"

    def _describe(self, need: str) -> str:
        o = self.options
        live = {
            "rules": self._live("rules") and bool(self._running_rule_files),
            "prometheus_config": self._live("prometheus_config") and self._running_config is not None,
        }
        if need == "rules" and live["rules"]:
            return f"{o.prometheus_url}/api/v1/rules (" + ",".join(str(p) for p in self._running_rule_files) + ")"
        if need in ("prometheus_config", "scrape_intervals") and live["prometheus_config"]:
            return f"{o.prometheus_url}/api/v1/status/config"
        text = {
            "rules": ",".join(str(p) for p in o.rules),
            "rule_tests": ",".join(str(p) for p in (o.rule_tests or [])) or "<rules dir>/tests/*.yml",
            "dashboard": str(o.dashboard),
            "prometheus_config": str(o.prometheus_config),
            "scrape_intervals": str(o.prometheus_config),
            "alertmanager_config": str(o.alertmanager_config),
            "contract": str(o.contract or "backend"),
            "expectations": str(o.expectations or f"verify/expectations/{self._contract_name()}.toml"),
            "ledger": str(o.run_dir / "ledger.json") if o.run_dir else "-",
            "window": str(o.run_dir / "ledger.json") if o.run_dir else "-",
            "prom": o.prometheus_url or "-",
            "exported": o.prometheus_url or ",".join(o.scrape_targets) or "-",
        }.get(need, need)
        return text

    def _contract_name(self) -> str:
        try:
            return self.contract.name
        except (HarnessError, MissingInput):
            return "?"

    # -- files ---------------------------------------------------------------------------
    @cached_property
    def rules(self) -> list[Rule]:
        if self._live("rules") and self._running_rule_files:
            return load_rules(self._running_rule_files)
        if not self.options.rules:
            raise MissingInput("no rules files given (--rules)")
        return load_rules([_exists(p, "rules file", "--rules") for p in self.options.rules])

    @cached_property
    def rule_tests(self) -> list[Path]:
        if self.options.rule_tests is not None:
            paths = [_exists(p, "promtool test file", "--rule-tests") for p in self.options.rule_tests]
        else:
            paths = sorted(
                {t for p in self.options.rules for t in (Path(p).parent / "tests").glob("*.yml")}
                | {t for p in self.options.rules for t in (Path(p).parent / "tests").glob("*.yaml")}
            )
        if not paths:
            raise MissingInput("no promtool test files next to the rules (tests/*.yml) and none given")
        return paths

    @cached_property
    def dashboard(self) -> Dashboard:
        return load_dashboard(_exists(self.options.dashboard, "dashboard", "--dashboard"))

    @cached_property
    def _live_prom(self) -> Prom | None:
        """The Prometheus, when live facts are wanted and it answers; else None (files are the facts)."""
        if not self.options.live_facts:
            return None
        try:
            return self.prom
        except (MissingInput, HarnessError):
            return None

    @cached_property
    def _running_config(self) -> dict[str, Any] | None:
        prom = self._live_prom
        return prom.running_config() if prom is not None else None

    @cached_property
    def _running_rule_files(self) -> list[Path]:
        """The rule files the Prometheus evaluates (/api/v1/rules), those readable here."""
        prom = self._live_prom
        doc = prom._get_json("/api/v1/rules") if prom is not None else None
        files = []
        for group in ((doc or {}).get("data") or {}).get("groups") or []:
            path = Path(str(group.get("file") or ""))
            if path.is_file() and path not in files:
                files.append(path)
        return files

    @cached_property
    def _scraped_jobs(self) -> dict[str, float]:
        """Job -> scrape interval (s) of every job with an active target (/api/v1/targets): the
        jobs that really run. A job of the running config with no target (an empty service
        discovery, a relabelling that drops every target) scrapes nothing and is not here."""
        prom = self._live_prom
        if prom is None:
            return {}
        configured = scrape_intervals(self._running_config) if self._running_config is not None else {}
        out: dict[str, float] = {}
        for target in prom.active_targets():
            pool = str(target.get("scrapePool") or "")
            job = str((target.get("labels") or {}).get("job") or pool)
            raw = target.get("scrapeInterval")
            out[job] = parse_duration_s(str(raw)) if raw else configured.get(pool, 60.0)
        return out

    def _live(self, name: str) -> bool:
        return name not in self.options.explicit and self._live_prom is not None

    @cached_property
    def prometheus_config(self) -> dict[str, Any]:
        if self._live("prometheus_config") and self._running_config is not None:
            return self._running_config
        return load_yaml(_exists(self.options.prometheus_config, "Prometheus config", "--prometheus-config"))

    def config_differences(self) -> list[str]:
        """What an explicitly given prometheus.yml or rules file says otherwise than the running
        Prometheus (scrape intervals, jobs, alert rules); [] when nothing was given or it agrees."""
        try:
            return self._config_differences()
        except PrometheusLost as lost:
            return [f"not compared: {lost}"]

    def _config_differences(self) -> list[str]:
        if self._live_prom is None:
            return []
        out = []
        running = self._running_config
        if "prometheus_config" in self.options.explicit and running is not None:
            given = scrape_intervals(load_yaml(Path(self.options.prometheus_config)))  # type: ignore[arg-type]
            live = self._scraped_jobs  # the jobs with targets, not only those configured
            configured = scrape_intervals(running)
            for job in sorted(set(given) | set(live)):
                if job not in live:
                    idle = " (configured there, no active target)" if job in configured else ""
                    out.append(f"job {job}: in {self.options.prometheus_config}, not scraped by {self.prom.url}{idle}")
                elif job not in given:
                    out.append(f"job {job}: scraped by {self.prom.url}, not in {self.options.prometheus_config}")
                elif given[job] != live[job]:
                    out.append(f"job {job}: scrape interval {given[job]:g}s in the file, {live[job]:g}s running")
        if "rules" in self.options.explicit and self._running_rule_files:
            try:
                given_alerts = {r.name for r in self.rules if r.kind == "alert"}
            except (MissingInput, HarnessError):
                return out  # the rules' own problem is reported by the checks that read them
            live_alerts = {r.name for r in load_rules(self._running_rule_files) if r.kind == "alert"}
            for name in sorted(given_alerts - live_alerts):
                out.append(f"alert {name}: in --rules, not evaluated by {self.prom.url}")
            for name in sorted(live_alerts - given_alerts):
                out.append(f"alert {name}: evaluated by {self.prom.url}, not in --rules")
        return out

    @cached_property
    def alertmanager_config(self) -> dict[str, Any]:
        return load_yaml(_exists(self.options.alertmanager_config, "Alertmanager config", "--alertmanager-config"))

    @cached_property
    def scrape_intervals(self) -> dict[str, float]:
        return scrape_intervals(self.prometheus_config)

    @cached_property
    def contract(self) -> Contract:
        try:
            return load_contract(self.options.contract)
        except ContractError as err:
            raise HarnessError(str(err)) from None

    @cached_property
    def expectations(self) -> Expectations:
        return load_expectations(self.options.expectations, self.contract.name)

    # -- the run -------------------------------------------------------------------------
    @cached_property
    def ledger_path(self) -> Path:
        if self.options.run_dir is None:
            raise MissingInput("no run directory given (RUN_DIR / --run-dir)")
        run_dir = Path(self.options.run_dir)
        if not run_dir.is_dir():
            raise HarnessError(f"run directory {run_dir} does not exist; pass the directory codesync-load run printed")
        path = run_dir / "ledger.json"
        if not path.exists():
            raise HarnessError(f"{run_dir} holds no ledger.json; is it a run directory of `codesync-load run`?")
        return path

    @cached_property
    def ledger_doc(self) -> dict[str, Any]:
        try:
            return json.loads(self.ledger_path.read_text())
        except json.JSONDecodeError as err:
            raise HarnessError(f"{self.ledger_path} is not valid JSON ({err.msg}); regenerate the run") from None

    @cached_property
    def ledger(self) -> Ledger:
        try:
            return Ledger.from_dict(self.ledger_doc, source=str(self.ledger_path))
        except LedgerError as err:
            raise HarnessError(str(err)) from None

    @cached_property
    def window(self) -> LoadWindow:
        return LoadWindow.from_ledger_doc(self.ledger_doc, str(self.ledger_path))

    # -- Prometheus ----------------------------------------------------------------------
    @cached_property
    def prom(self) -> Prom:
        url = self.options.prometheus_url
        if not url and self.options.run_dir is not None:
            try:
                url = (self.ledger_doc.get("meta") or {}).get("prometheus_url")
            except HarnessError:
                url = None
        if not url:
            raise MissingInput("no Prometheus given (--prometheus-url, or prometheus_url in the ledger's meta)")
        prom = Prom(url)
        prom.names()  # reachable now, or one HarnessError line
        return prom

    @cached_property
    def live_scrape_intervals(self) -> dict[str, float]:
        """Scrape interval per job of the Prometheus being queried (its running config, which may
        differ from --prometheus-config: the local stack scrapes every 1-2 s). With no Prometheus
        to ask (static checks), the Prometheus config file is the fact."""
        try:
            prom = self.prom
        except MissingInput:
            return dict(self.scrape_intervals)
        config = prom.running_config()
        if config is None:
            return dict(self.scrape_intervals) if self.options.prometheus_config else {}
        return scrape_intervals(config)

    @cached_property
    def after_time(self) -> float:
        """A moment at which every job has been scraped after the run's last event."""
        return (max(self.after_at.values()) if self.after_at else self.window.end) + 0.001

    @cached_property
    def after_at(self) -> dict[str, float]:
        """Per target job: the time of its FIRST scrape that began after the run's last event.

        A counter read there holds every event of the run and as little as can be of what came
        after (a next trial, live checks): taking the second scrape counted the first requests of
        whatever started in between."""
        end = self.window.end
        return {
            job: self.prom.first_scrape_after(
                job, end, self.options.settle_timeout_s, self.live_scrape_intervals.get(job, 15.0)
            )
            for job in self.target_jobs()
        }

    @cached_property
    def before_at(self) -> dict[str, float]:
        """Per target job: the time of its newest scrape that had ENDED before the run's first
        event (a scrape in flight at the start renders its counters after the first requests:
        read there, one of them counted as "before" and the window came out one short)."""
        start = self.window.start
        out = {}
        for job in self.target_jobs():
            lookback = 10 * self.live_scrape_intervals.get(job, 15.0) + 60
            done = self.prom.last_scrape_done_before(job, start, lookback)
            out[job] = start if done is None else done
        return out

    def wait_scraped_since(self, moment: float, timeout: float | None = None) -> None:
        """Until every target job has a scrape that began after `moment` (HarnessError when one has
        none within `timeout` s of being waited for; default: the settle timeout)."""
        for job in self.target_jobs():
            self.prom.wait_for_scrape_since(job, moment, self.options.settle_timeout_s if timeout is None else timeout)

    def target_jobs(self) -> list[str]:
        """The contract's API and Yjs jobs that this Prometheus scrapes (has scraped at least once)."""
        jobs = self.expectations.api_jobs + self.expectations.yjs_jobs
        # a job this target does not have is skipped here (and reported by the presence check)
        return [job for job in jobs if self.prom.last_scrape(job) is not None]

    @cached_property
    def exported(self) -> ExportedSeries:
        if self.options.scrape_targets:  # given explicitly: what the pages say, not what was stored
            catalog = ExportedSeries.from_scrapes(self.options.scrape_targets)
            self._add_records(catalog)
            return catalog
        try:
            prom = self.prom
        except MissingInput:
            prom = None
        if prom is not None:
            try:
                start, end = self.window.start - 60, self.after_time
            except MissingInput:
                end = time.time()
                start = end - 600
            catalog = ExportedSeries.from_prometheus(prom, start, end)
            self._add_records(catalog)
            return catalog
        raise MissingInput("nothing to read exported series from (--prometheus-url or scrape targets)")

    def _add_records(self, catalog: ExportedSeries) -> None:
        try:
            rules = self.rules
        except MissingInput:
            return
        records: dict[str, set[str]] = {}
        for rule in rules:
            if rule.kind == "record" and rule.refs is not None:
                labels = set(rule.labels) | (rule.refs.grouping_labels or set()) | {"job", "instance"}
                records[rule.name] = labels
        catalog.add_recording_rules(records)


def scraped_until_now(*prometheus_urls: str) -> None:
    """Wait until each Prometheus has scraped its target after this moment; before a load.

    A run's window counts from the last scrape before its first event and ends at the first
    scrape after its last. Traffic just before a load (a gate's previous trial and its live
    checks, the previous run's last requests) that falls after that "before" scrape would be
    counted as the run's own; in a gate's A/B mode a pair's first requests could land before
    the previous pair's "after" scrape. Seen: a reconciliation off by one Yjs connection, and
    by 5 GET /health and 3 registers. Waits at most one scrape interval.
    """
    moment = time.time()
    for url in prometheus_urls:
        VerifyContext(VerifyOptions(prometheus_url=url)).wait_scraped_since(moment)
