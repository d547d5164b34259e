"""Reconciliation expectations as data: which ledger entries predict which metric's change.

    >>> table = load_expectations()                      # verify/expectations/backend.toml
    >>> spec = table.counters[0]
    >>> spec.metric, spec.ledger, spec.labels
    ('codesync_http_requests_total', 'http', {'method': 'method', 'route': 'route', 'status_code': 'status'})
    >>> table.predict_counter(ledger, spec)              # {(("method","GET"),...): (12, [ledger rows])}

Why data: a deployment with other metric names or labels (the monitoring guide's, say) is a
second TOML file, not new code. Each entry says which ledger kind it reads, which ledger
entries count (`where`, `exclude`), how ledger labels become metric labels (`labels`, with
`values` translating label values and `fixed` adding constant labels), and which scrape jobs
export the metric. The prediction keeps the ledger rows behind each expected number, so a
failure can show the evidence, not only the totals.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codesync_load.errors import HarnessError, is_server_error
from codesync_load.ledger import KINDS, Ledger

EXPECTATIONS_DIR = Path(__file__).resolve().parent / "expectations"

LabelKey = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Selection:
    """Which ledger rows of one kind count: label -> allowed values (`where`) or refused values (`exclude`)."""

    where: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    exclude: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def admits(self, row: Mapping[str, Any]) -> bool:
        if any(not _matches(row.get(k), vals) for k, vals in self.where.items()):
            return False
        return not any(_matches(row.get(k), vals) for k, vals in self.exclude.items())


SERVER_ERROR = "5xx"  # a selection value meaning every server error (codesync_load.errors.is_server_error)


def _matches(value: Any, allowed: tuple[str, ...]) -> bool:
    """`value` is one of `allowed`; the value "5xx" admits any status the core calls a server
    error, so "5xx" has one definition (500-599) in the expectations as everywhere else."""
    if str(value) in allowed:
        return True
    if SERVER_ERROR in allowed:
        try:
            return is_server_error(int(value))
        except (TypeError, ValueError):
            return False
    return False


@dataclass(frozen=True)
class CounterSpec:
    metric: str
    jobs: tuple[str, ...]
    ledger: str
    labels: Mapping[str, str]  # metric label -> ledger label
    select: Selection
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # ledger label -> value map
    fixed: Mapping[str, str] = field(default_factory=dict)  # metric label -> constant
    note: str = ""

    @property
    def key_labels(self) -> tuple[str, ...]:
        return tuple(sorted({*self.labels, *self.fixed}))


@dataclass(frozen=True)
class GaugeSpec:
    metric: str
    jobs: tuple[str, ...]
    ledger: str
    labels: Mapping[str, str]
    up: Selection
    down: Selection
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    note: str = ""
    per: str = ""  # a ledger label: the gauge counts its values that have more ups than downs

    @property
    def key_labels(self) -> tuple[str, ...]:
        return tuple(sorted(self.labels))


@dataclass(frozen=True)
class LowerBoundSpec:
    """A counter that must rise by at least `per` for each ledger row `select` admits.

    Why a bound, not an exact count: how many queries a request costs is the server's own
    business, but a state-changing request the server answered with success certainly cost at
    least one. A metric excused from exact reconciliation ([unreconciled]) is still held to it.
    """

    metric: str
    jobs: tuple[str, ...]
    ledger: str
    select: Selection
    per: int = 1
    note: str = ""


@dataclass(frozen=True)
class HistogramSpec:
    metric: str  # base name; _bucket/_count/_sum are appended
    jobs: tuple[str, ...]
    client_samples: tuple[str, ...]
    quantiles: tuple[float, ...]
    note: str = ""


@dataclass(frozen=True)
class PanelSpec:
    """A dashboard panel whose meaning is known, and how the ledger predicts its value."""

    title: str
    meaning: str  # request_rate | error_ratio | latency_quantile | gauge_peak | counter_rate
    ledger: str = ""
    select: Selection = field(default_factory=Selection)
    errors: Selection = field(default_factory=Selection)  # for error_ratio: which rows are errors
    gauge: str = ""  # for gauge_peak: metric name of a [[gauge]] entry
    quantile: float = 0.95
    client_samples: tuple[str, ...] = ()
    reference: str = ""  # the correct PromQL for this meaning; $__rate_interval = the panel's own window


ALERT_MEASURES = ("error_ratio", "latency_quantile", "counter_rate")
ALERT_OPS = (">", ">=", "<", "<=")


@dataclass(frozen=True)
class AlertSpec:
    """What an alert is for, stated apart from its rule: the ledger's measure of the thing it
    watches and the threshold the monitoring guide sets (rules-promtool-generated holds the
    rule, fed the ledger's rates, against this)."""

    name: str
    measure: str  # error_ratio | latency_quantile | counter_rate (per second of the load)
    op: str
    threshold: float
    ledger: str = ""
    select: Selection = field(default_factory=Selection)
    errors: Selection = field(default_factory=Selection)  # error_ratio: which selected rows are errors
    quantile: float = 0.95
    histogram: str = ""  # latency_quantile: the contract histogram whose buckets the rule reads
    client_samples: tuple[str, ...] = ()
    note: str = ""


@dataclass
class Expectations:
    source: Path
    contract: str
    api_jobs: tuple[str, ...]
    yjs_jobs: tuple[str, ...]
    counters: list[CounterSpec]
    gauges: list[GaugeSpec]
    histograms: list[HistogramSpec]
    panels: list[PanelSpec]
    unreconciled: Mapping[str, str] = field(default_factory=dict)  # contract metric -> why not
    lower_bounds: list[LowerBoundSpec] = field(default_factory=list)
    alerts: list[AlertSpec] = field(default_factory=list)

    def reconciles(self, metric: str) -> str | None:
        """Which kind of entry predicts contract metric `metric` (a histogram's `_count` counts)."""
        if any(s.metric in (metric, f"{metric}_count") for s in self.counters):
            return "counter"
        if any(s.metric == metric for s in self.gauges):
            return "gauge"
        if any(s.metric == metric for s in self.histograms):
            return "histogram"
        return None

    def jobs_for_process(self, process: str) -> tuple[str, ...]:
        if process == "api":
            return self.api_jobs
        if process == "yjs":
            return self.yjs_jobs
        return self.api_jobs + self.yjs_jobs


def _rows(ledger: Ledger, kind: str) -> list[tuple[dict[str, Any], int]]:
    names = KINDS[kind]
    return [(dict(zip(names, labels, strict=True)), count) for labels, count in ledger.entries(kind)]


def _metric_key(spec: CounterSpec | GaugeSpec, row: Mapping[str, Any]) -> LabelKey:
    out = {}
    for metric_label, ledger_label in spec.labels.items():
        raw = str(row.get(ledger_label))
        out[metric_label] = spec.values.get(ledger_label, {}).get(raw, raw)
    out.update(getattr(spec, "fixed", {}) or {})
    return tuple(sorted(out.items()))


def predict_counter(ledger: Ledger, spec: CounterSpec) -> dict[LabelKey, tuple[int, list[str]]]:
    """Metric label set -> (predicted increase, the ledger rows behind it)."""
    out: dict[LabelKey, tuple[int, list[str]]] = {}
    for row, count in _rows(ledger, spec.ledger):
        if not spec.select.admits(row):
            continue
        key = _metric_key(spec, row)
        total, rows = out.get(key, (0, []))
        rows.append(f"{spec.ledger}{_fmt_row(row)}={count}")
        out[key] = (total + count, rows)
    return out


def predict_gauge(ledger: Ledger, spec: GaugeSpec) -> dict[LabelKey, tuple[int, int, list[str]]]:
    """Label set -> (ups, downs, ledger rows): the gauge should end at start + ups - downs, peak <= start + ups.

    A gauge `per` a ledger label (loaded documents: one per document with a connection open)
    counts distinct values: ups = values ever opened, downs = those whose every up was
    matched by a down."""
    out: dict[LabelKey, tuple[int, int, list[str]]] = {}
    per_value: dict[tuple[LabelKey, str], list[int]] = {}
    for row, count in _rows(ledger, spec.ledger):
        is_up, is_down = spec.up.admits(row), spec.down.admits(row)
        if not (is_up or is_down):
            continue
        key = _metric_key(spec, row)
        ups, downs, rows = out.get(key, (0, 0, []))
        rows.append(f"{spec.ledger}{_fmt_row(row)}={count}")
        out[key] = (ups + (count if is_up else 0), downs + (count if is_down else 0), rows)
        if spec.per:
            tally = per_value.setdefault((key, str(row.get(spec.per))), [0, 0])
            tally[0 if is_up else 1] += count
    if spec.per:
        for key, (_ups, _downs, rows) in list(out.items()):
            tallies = [v for (k, _value), v in per_value.items() if k == key]
            opened = sum(1 for up, _down in tallies if up)
            closed = sum(1 for up, down in tallies if up and down >= up)
            out[key] = (opened, closed, [f"{opened} distinct {spec.per} values opened, {closed} closed", *rows[:4]])
    return out


def gauge_timeline(ledger: Ledger, spec: GaugeSpec) -> dict[LabelKey, list[tuple[float, int]]] | None:
    """Label set -> the ledger's level (relative to the start) after each stamped event, in time
    order; None when the ledger has no stamped events of the gauge's kind (an older ledger)."""
    events = ledger.events(spec.ledger)
    if not events:
        return None
    names = KINDS[spec.ledger]
    out: dict[LabelKey, list[tuple[float, int]]] = {}
    level: dict[LabelKey, int] = {}
    open_per: dict[tuple[LabelKey, str], int] = {}
    for at, labels in events:
        row = dict(zip(names, labels, strict=True))
        is_up, is_down = spec.up.admits(row), spec.down.admits(row)
        if not (is_up or is_down):
            continue
        key = _metric_key(spec, row)
        step = 1 if is_up else -1
        if spec.per:
            value = (key, str(row.get(spec.per)))
            before = open_per.get(value, 0)
            open_per[value] = before + step
            step = int(open_per[value] > 0) - int(before > 0)
        level[key] = level.get(key, 0) + step
        out.setdefault(key, []).append((at, level[key]))
    return out


def ledger_total(ledger: Ledger, kind: str, select: Selection) -> tuple[int, list[str]]:
    total, rows = 0, []
    for row, count in _rows(ledger, kind):
        if select.admits(row):
            total += count
            rows.append(f"{kind}{_fmt_row(row)}={count}")
    return total, rows


def _fmt_row(row: Mapping[str, Any]) -> str:
    return "{" + ",".join(f"{k}={v}" for k, v in row.items()) + "}"


def _table(raw: Any, where: str) -> dict[str, tuple[str, ...]]:
    """`{event = ["opened"]}` -> {"event": ("opened",)}; scalars become one-element tuples."""
    raw = raw or {}
    if not isinstance(raw, Mapping):
        raise HarnessError(f'{where}: expected a table like {{event = ["opened"]}}, got {raw!r}')
    return {str(k): tuple(str(x) for x in (v if isinstance(v, list) else [v])) for k, v in raw.items()}


def _selection(raw: Mapping[str, Any], where: str, prefix: str = "") -> Selection:
    return Selection(_table(raw.get(f"{prefix}where"), where), _table(raw.get(f"{prefix}exclude"), where))


def load_expectations(path: str | Path | None = None, contract_name: str = "backend") -> Expectations:
    """Read an expectations TOML (default: the file named after the contract)."""
    source = Path(path) if path else EXPECTATIONS_DIR / f"{contract_name}.toml"
    try:
        data = tomllib.loads(source.read_text())
    except FileNotFoundError:
        raise HarnessError(
            f"no reconciliation expectations at {source}; pass --expectations FILE "
            f"(see verify/expectations/backend.toml for the format)"
        ) from None
    except tomllib.TOMLDecodeError as err:
        raise HarnessError(f"{source} is not valid TOML ({err}); fix the syntax") from None
    jobs = data.get("jobs") or {}
    api_jobs = tuple(jobs.get("api", ["codesync-backend"]))
    yjs_jobs = tuple(jobs.get("yjs", ["codesync-yjs"]))

    def job_list(raw: dict[str, Any]) -> tuple[str, ...]:
        value = raw.get("process", "api")
        if isinstance(value, list):
            return tuple(value)
        return {"api": api_jobs, "yjs": yjs_jobs, "both": api_jobs + yjs_jobs}.get(value, (value,))

    def check_kind(raw: dict[str, Any], where: str) -> str:
        kind = raw.get("ledger", "")
        if kind not in KINDS:
            raise HarnessError(f"{source}: {where} names ledger kind {kind!r}; use one of {sorted(KINDS)}")
        return kind

    counters = []
    for i, raw in enumerate(data.get("counter") or []):
        where = f"[[counter]] #{i + 1} ({raw.get('metric')})"
        counters.append(
            CounterSpec(
                metric=raw["metric"],
                jobs=job_list(raw),
                ledger=check_kind(raw, where),
                labels=dict(raw.get("labels") or {}),
                select=_selection(raw, where),
                values={k: dict(v) for k, v in (raw.get("values") or {}).items()},
                fixed=dict(raw.get("fixed") or {}),
                note=raw.get("note", ""),
            )
        )
    gauges = []
    for i, raw in enumerate(data.get("gauge") or []):
        where = f"[[gauge]] #{i + 1} ({raw.get('metric')})"
        gauges.append(
            GaugeSpec(
                metric=raw["metric"],
                jobs=job_list(raw),
                ledger=check_kind(raw, where),
                labels=dict(raw.get("labels") or {}),
                up=Selection(_table(raw.get("up"), where)),
                down=Selection(_table(raw.get("down"), where)),
                values={k: dict(v) for k, v in (raw.get("values") or {}).items()},
                note=raw.get("note", ""),
                per=str(raw.get("per", "")),
            )
        )
    lower_bounds = []
    for i, raw in enumerate(data.get("lower_bound") or []):
        where = f"[[lower_bound]] #{i + 1} ({raw.get('metric')})"
        per = raw.get("per", 1)
        if not isinstance(per, int) or per < 1:
            raise HarnessError(f"{source}: {where} has per = {per!r}; use a whole number >= 1")
        lower_bounds.append(
            LowerBoundSpec(
                metric=raw["metric"],
                jobs=job_list(raw),
                ledger=check_kind(raw, where),
                select=_selection(raw, where),
                per=per,
                note=raw.get("note", ""),
            )
        )
    histograms = [
        HistogramSpec(
            metric=raw["metric"],
            jobs=job_list(raw),
            client_samples=tuple(raw.get("client_samples") or ()),
            quantiles=tuple(float(q) for q in raw.get("quantiles") or (0.5, 0.95)),
            note=raw.get("note", ""),
        )
        for raw in data.get("histogram") or []
    ]
    panels = [
        PanelSpec(
            title=raw["title"],
            meaning=raw["meaning"],
            ledger=raw.get("ledger", ""),
            select=_selection(raw, f"panel {raw['title']}"),
            errors=_selection(raw, f"panel {raw['title']}", prefix="errors_"),
            gauge=raw.get("gauge", ""),
            quantile=float(raw.get("quantile", 0.95)),
            client_samples=tuple(raw.get("client_samples") or ()),
            reference=str(raw.get("reference", "")),
        )
        for raw in data.get("panel") or []
    ]
    alerts = [
        _alert(raw, f"[[alert]] #{i + 1} ({raw.get('name')})", source) for i, raw in enumerate(data.get("alert") or [])
    ]
    for spec in alerts:
        if spec.ledger:
            check_kind({"ledger": spec.ledger}, spec.name)
    unreconciled = data.get("unreconciled") or {}
    if not isinstance(unreconciled, Mapping) or not all(isinstance(v, str) for v in unreconciled.values()):
        example = 'process_max_fds = "a limit"'
        raise HarnessError(f"{source}: [unreconciled] must map metric names to reasons, e.g. {example}")
    return Expectations(
        source,
        data.get("contract", contract_name),
        api_jobs,
        yjs_jobs,
        counters,
        gauges,
        histograms,
        panels,
        dict(unreconciled),
        lower_bounds,
        alerts,
    )


def _alert(raw: Mapping[str, Any], where: str, source: Path) -> AlertSpec:
    measure, op = raw.get("measure"), raw.get("op", ">")
    if measure not in ALERT_MEASURES:
        raise HarnessError(f"{source}: {where} has measure {measure!r}; use one of {', '.join(ALERT_MEASURES)}")
    if op not in ALERT_OPS:
        raise HarnessError(f"{source}: {where} has op {op!r}; use one of {', '.join(ALERT_OPS)}")
    if not isinstance(raw.get("threshold"), int | float):
        raise HarnessError(f"{source}: {where} needs a numeric threshold (the guide's), e.g. threshold = 0.05")
    return AlertSpec(
        name=str(raw["name"]),
        measure=str(measure),
        op=str(op),
        threshold=float(raw["threshold"]),
        ledger=str(raw.get("ledger", "")),
        select=_selection(raw, where),
        errors=_selection(raw, where, prefix="errors_"),
        quantile=float(raw.get("quantile", 0.95)),
        histogram=str(raw.get("histogram", "")),
        client_samples=tuple(raw.get("client_samples") or ()),
        note=str(raw.get("note", "")),
    )
