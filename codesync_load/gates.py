"""CI gates: short threshold expressions over a run, k6-style, read from a TOML file.

    >>> spec = load_gates(Path("gates/ci.toml"))
    >>> [g.text for g in spec.gates][:2]
    ['p95(edit_propagation) < 250ms', 'error_rate < 1%']
    >>> results = evaluate_gates(spec.gates, ledger_docs=[doc], prom=None)   # CheckResult each
    >>> results[0].verdict, results[0].measured
    ('pass', 'p95 = 3.1ms (n=412)')

Why a file of one-liners: a gate is reviewed like a test, next to the profile it guards, and
reads as what it asserts. Two sides, one syntax `EXPRESSION OP THRESHOLD`:

- client gates read the run's ledger (the one record of what the load sent and saw):
  `p95(edit_propagation) < 250ms` is the 95th percentile of the raw samples (linear
  interpolation between order statistics, no histogram buckets), `error_rate < 1%` a ratio
  of exact counts. Functions: pNN (p50, p95, p99.9, ...), median, mean, min, max, count of a
  sample series; series names are the aliases in SAMPLE_ALIASES or a ledger sample name
  ending in `_s`; scalars are the names in SCALARS.
- server gates start with `server:` and are any PromQL expression, evaluated by Prometheus
  at the end of the load window, with `$__range` standing for the window's length (as in
  Grafana), e.g. `server: histogram_quantile(0.95, sum by (le) (rate(
  codesync_http_request_duration_seconds_bucket{job="codesync-backend"}[$__range]))) < 2`.
  Every series it returns must meet the threshold; no series (or NaN) fails the gate,
  because a gate that reads nothing proves nothing.

Thresholds: latencies need a unit (`250ms`, `0.25s`), ratios take `%` or a bare fraction,
counts a bare number; `ms` on a server gate divides by 1000 (Prometheus speaks seconds).
Operators: < <= > >= == !=. File format (gates/ci.toml):

    gates = [
      "p95(edit_propagation) < 250ms",
      "error_rate < 1%",
      # X - X offset $__range or X: the exact in-window increase, series born in the run included
      {name = "server-errors", gate = 'server: sum(E - E offset $__range or E) < 5'},   # E = codesync_errors_total
    ]
    checks = ["*"]                  # verify checks that are part of the gate (globs; [] = none)
    [baseline]                      # what --baseline compares (see codesync_load/baseline.py)
    metrics = ["p95(http)"]
    alpha = 0.05

Every mistake is one GateError line naming file:line and the fix.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from codesync_load.errors import HarnessError, is_server_error
from codesync_load.results import CheckResult, Evidence

GATES_DIR = Path(__file__).resolve().parent.parent / "gates"

# Friendly names of the ledger's latency sample series.
SAMPLE_ALIASES: dict[str, str] = {
    "edit_propagation": "yjs_propagation_s",
    "chat_rtt": "chat_rtt_s",
    "http": "http_s",
    "yjs_connect_sync": "yjs_connect_sync_s",
    "autosave_put": "autosave_put_s",  # 2xx file-content PUTs only (scenarios.recording.ROUTE_SAMPLES)
}

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
}

_GATE_RE = re.compile(r"^(?P<expr>.*\S)\s*(?P<op><=|>=|==|!=|<|>)\s*(?P<num>[0-9]*\.?[0-9]+)\s*(?P<unit>ms|s|%)?$")
_FUNC_RE = re.compile(r"^(?P<func>[a-z][a-z0-9.]*)\((?P<arg>[a-z_][a-z0-9_]*)\)$")
_PCT_RE = re.compile(r"^p(?P<q>\d{1,3}(?:\.\d+)?)$")
_SAMPLE_FUNCS = ("median", "mean", "min", "max", "count")
_BASELINE_KEYS = {"metrics", "alpha", "min_effect", "confidence", "resamples", "seed"}


class GateError(HarnessError):
    """A gate file that cannot be used; the message names file:line and the fix."""


# -- client-side scalars computed from the ledger's exact counts ------------------------------
def _http_errors(doc: dict[str, Any]) -> tuple[int, int]:
    """(HTTP 5xx answers + HTTP transport failures, all HTTP attempts)."""
    counts = doc.get("counts") or {}
    answered = sum(int(r["count"]) for r in counts.get("http", []))
    server_errors = sum(int(r["count"]) for r in counts.get("http", []) if is_server_error(r["status"]))
    transport = sum(int(r["count"]) for r in counts.get("failure", []) if r.get("channel") == "http")
    return server_errors + transport, answered + transport


def _error_rate(doc: dict[str, Any]) -> float:
    """The 5xx share of HTTP attempts; NaN (no data, the gate fails) when the run made none: an
    empty run has nothing to judge, and a 0 % there would pass `error_rate < 1%`."""
    bad, total = _http_errors(doc)
    return bad / total if total else math.nan


def _total(kind: str, **where: Any) -> Callable[[dict[str, Any]], float]:
    def value(doc: dict[str, Any]) -> float:
        rows = (doc.get("counts") or {}).get(kind, [])
        return float(sum(int(r["count"]) for r in rows if all(r.get(k) == v for k, v in where.items())))

    return value


def _failed_results(doc: dict[str, Any]) -> float:
    return float(sum(1 for r in doc.get("results") or [] if not r.get("ok")))


# name -> (kind, function of the ledger document, what it is)
SCALARS: dict[str, tuple[str, Callable[[dict[str, Any]], float], str]] = {
    "error_rate": ("ratio", _error_rate, "HTTP 5xx answers and transport failures / all HTTP attempts"),
    "requests": ("count", _total("http"), "HTTP responses received"),
    "failures": ("count", _total("failure"), "client-side failures of any channel (timeouts, resets, ...)"),
    "rate_limited": ("count", _total("rate_limited"), "calls refused by a rate limiter (429 / close 1008)"),
    "refused": ("count", _total("connection", event="refused"), "WebSocket connections refused"),
    "checks_failed": ("count", _failed_results, "convergence/durability results that failed"),
    "updates_sent": ("count", _total("yjs_update", event="sent"), "Yjs updates sent"),
}


@dataclass(frozen=True)
class Metric:
    """The left-hand side of a gate: what is measured (without a threshold)."""

    text: str
    side: str  # "client" | "server"
    kind: str  # "latency" | "ratio" | "count" | "promql"
    func: str = ""  # client samples: p95, mean, ...; scalars: the scalar name
    series: str = ""  # client samples: the ledger sample name
    promql: str = ""
    label: str = ""  # a short name given in the file ([baseline.metrics] NAME = "..."), else the text

    @property
    def name(self) -> str:
        return self.label or self.text


@dataclass(frozen=True)
class Gate:
    """One parsed gate line: metric OP threshold (threshold in base units: seconds, fraction)."""

    text: str
    metric: Metric
    op: str
    threshold: float
    threshold_text: str
    source: str  # "file:line"
    unit: str = ""  # the threshold's unit as written: ms, s, % or ""
    label: str = ""  # short name given in the file ({name = "...", gate = "..."}), else the text

    @property
    def name(self) -> str:
        return self.label or self.text

    def holds(self, value: float) -> bool:
        return OPERATORS[self.op](value, self.threshold)


@dataclass(frozen=True)
class BaselineSettings:
    """The [baseline] table: which metrics are compared and the statistical decision rule."""

    metrics: tuple[Metric, ...] = ()
    alpha: float = 0.05
    min_effect: float = 1.10
    confidence: float = 0.95
    resamples: int = 2000
    seed: int = 20261127


@dataclass(frozen=True)
class GateSpec:
    path: Path
    gates: tuple[Gate, ...]
    baseline: BaselineSettings = field(default_factory=BaselineSettings)
    checks: tuple[str, ...] = ("*",)  # globs of the verify checks that are part of the gate


# -- parsing ----------------------------------------------------------------------------------
def parse_metric(text: str, where: str) -> Metric:
    """A metric expression (`p95(http)`, `error_rate`, `server: <PromQL>`); GateError when invalid."""
    text = text.strip()
    if text.startswith("server:"):
        promql = text.removeprefix("server:").strip()
        if not promql:
            raise GateError(f"{where}: `server:` needs a PromQL expression after it, e.g. server: up < 2")
        if promql.count("(") != promql.count(")") or promql.count("{") != promql.count("}"):
            raise GateError(f"{where}: unbalanced brackets in the PromQL {promql!r}; close every ( and {{")
        return Metric(text, "server", "promql", promql=promql)
    if text in SCALARS:
        return Metric(text, "client", SCALARS[text][0], func=text)
    match = _FUNC_RE.match(text)
    if not match:
        names = ", ".join(sorted(SCALARS))
        raise GateError(
            f"{where}: {text!r} is not a gate metric; write FUNC(SERIES) like p95(http), a scalar ({names}), "
            "or server: <PromQL>"
        )
    func, arg = match["func"], match["arg"]
    pct = _PCT_RE.match(func)
    if not pct and func not in _SAMPLE_FUNCS:
        raise GateError(f"{where}: unknown function {func!r}; use pNN (p50, p95, p99.9) or {', '.join(_SAMPLE_FUNCS)}")
    if pct and not 0 < float(pct["q"]) < 100:
        raise GateError(f"{where}: percentile {func} is out of range; use p1 .. p99.9")
    series = SAMPLE_ALIASES.get(arg, arg if arg.endswith("_s") else "")
    if not series:
        raise GateError(
            f"{where}: unknown sample series {arg!r}; use one of {', '.join(SAMPLE_ALIASES)} "
            "or a ledger sample name ending in _s"
        )
    return Metric(text, "client", "count" if func == "count" else "latency", func=func, series=series)


def parse_gate(text: str, where: str) -> Gate:
    """One gate line `METRIC OP THRESHOLD[unit]`; GateError naming `where` and the fix when invalid."""
    match = _GATE_RE.match(text.strip())
    if not match:
        raise GateError(f"{where}: {text!r} has no comparison with a number at its end; write e.g. p95(http) < 250ms")
    metric = parse_metric(match["expr"], where)
    number, unit = float(match["num"]), match["unit"] or ""
    threshold_text = f"{match['num']}{unit}"
    if metric.kind == "latency":
        if unit not in ("ms", "s"):
            raise GateError(
                f"{where}: {metric.text} is a latency; give the threshold a unit, e.g. {match['num']}ms or "
                f"{match['num']}s"
            )
    elif metric.kind == "ratio":
        if unit not in ("%", ""):
            raise GateError(f"{where}: {metric.text} is a ratio; write the threshold as 1% or 0.01, not {unit}")
        if unit == "" and number > 1:
            raise GateError(f"{where}: {metric.text} is a ratio between 0 and 1; write {match['num']}% or a fraction")
    elif metric.kind == "count" and unit:
        raise GateError(f"{where}: {metric.text} is a count; write the threshold as a plain number, not {unit}")
    scale = {"ms": 0.001, "%": 0.01}.get(unit, 1.0)
    return Gate(text.strip(), metric, match["op"], number * scale, threshold_text, where, unit)


def _line_of(raw_lines: Sequence[str], value: str, start: int) -> int:
    """1-based line of the TOML string `value` at or after line `start` (best effort)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    for number in range(start, len(raw_lines) + 1):
        line = raw_lines[number - 1]
        if value in line or escaped in line:
            return number
    return start


def load_gates(path: Path) -> GateSpec:
    """Read and validate a gate file; every problem is one GateError line naming file:line."""
    path = Path(path)
    try:
        raw = path.read_text()
    except FileNotFoundError:
        raise GateError(f"gate file {path} does not exist; pass --gates FILE (see gates/ci.toml)") from None
    except OSError as err:
        raise GateError(f"gate file {path} cannot be read ({err.strerror}); check its permissions") from None
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as err:
        line = re.search(r"line (\d+)", str(err))
        number = line[1] if line else max(1, len(raw.splitlines()))  # "at end of document"
        raise GateError(f"{path}:{number}: not valid TOML ({str(err).split(' (at')[0]}); fix the syntax") from None
    lines = raw.splitlines()

    def line_of_key(key: str) -> int:
        for number, line in enumerate(lines, 1):
            if re.match(rf"\s*\[?{re.escape(key)}\]?\s*(=|$)", line):
                return number
        return 1

    unknown = sorted(set(data) - {"gates", "baseline", "checks", "description"})
    if unknown:
        raise GateError(
            f"{path}:{line_of_key(unknown[0])}: unknown key {unknown[0]!r}; a gate file has gates, checks, "
            "baseline, description"
        )
    checks = data.get("checks", ["*"])
    if not isinstance(checks, list) or not all(isinstance(c, str) and c for c in checks):
        raise GateError(
            f"{path}:{line_of_key('checks')}: `checks` must be a list of check-name globs, e.g. "
            'checks = ["counters-*"] (or [] for none)'
        )
    items = data.get("gates")
    if not isinstance(items, list) or not items:
        raise GateError(
            f"{path}:{line_of_key('gates')}: `gates` must be a non-empty list of strings, e.g. "
            'gates = ["error_rate < 1%"]'
        )
    gates = []
    names: set[str] = set()
    cursor = line_of_key("gates")
    for item in items:
        label, text = _named(item, f"{path}:{cursor}")
        cursor = _line_of(lines, text, cursor)
        gate = replace(parse_gate(text, f"{path}:{cursor}"), label=label)
        if gate.name in names:
            raise GateError(f"{path}:{cursor}: gate {gate.name!r} is listed twice; give one of them another name")
        names.add(gate.name)
        gates.append(gate)
    return GateSpec(path, tuple(gates), _baseline_settings(data.get("baseline"), path, lines), tuple(checks))


def _named(item: Any, where: str) -> tuple[str, str]:
    """("", text) for a plain string, (name, text) for {name = "...", gate = "..."}."""
    if isinstance(item, str):
        return "", item
    if isinstance(item, dict) and set(item) == {"name", "gate"} and all(isinstance(v, str) for v in item.values()):
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", item["name"]):
            raise GateError(f"{where}: gate name {item['name']!r} may hold only letters, digits, _ . -")
        return item["name"], item["gate"]
    raise GateError(f'{where}: a gate is a string or {{name = "...", gate = "..."}}, not {item!r}')


def _baseline_settings(table: Any, path: Path, lines: Sequence[str]) -> BaselineSettings:
    if table is None:
        return BaselineSettings()
    start = next((n for n, line in enumerate(lines, 1) if line.strip() == "[baseline]"), 1)
    if not isinstance(table, dict):
        raise GateError(f"{path}:{start}: `baseline` must be a table ([baseline]); see gates/ci.toml")
    unknown = sorted(set(table) - _BASELINE_KEYS)
    if unknown:
        where = f"{path}:{_line_of(lines, unknown[0], start)}"
        raise GateError(f"{where}: unknown [baseline] key {unknown[0]!r}; known: {', '.join(sorted(_BASELINE_KEYS))}")

    def number(key: str, default: float, low: float, high: float, integer: bool = False) -> Any:
        value = table.get(key, default)
        where = f"{path}:{_line_of(lines, key, start)}"
        if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
            raise GateError(f"{where}: [baseline] {key} must be a {'whole ' if integer else ''}number")
        if not low <= value <= high:
            raise GateError(f"{where}: [baseline] {key} = {value} is out of range; use {low:g} .. {high:g}")
        return value

    metrics_raw = table.get("metrics", [])
    if isinstance(metrics_raw, dict):
        named = list(metrics_raw.items())
    elif isinstance(metrics_raw, list):
        named = [("", m) for m in metrics_raw]
    else:
        named = [("", None)]
    if not all(isinstance(m, str) for _, m in named):
        raise GateError(
            f"{path}:{_line_of(lines, 'metrics', start)}: [baseline] metrics must be a list of metric strings "
            'or a table [baseline.metrics] NAME = "metric"'
        )
    metrics = []
    cursor = start
    for label, text in named:
        cursor = _line_of(lines, text, cursor)
        if _GATE_RE.match(text.strip()):
            raise GateError(f"{path}:{cursor}: baseline metric {text!r} has a threshold; list the metric only")
        metric = parse_metric(text, f"{path}:{cursor}")
        metrics.append(Metric(**{**metric.__dict__, "label": label}))
    return BaselineSettings(
        metrics=tuple(metrics),
        alpha=float(number("alpha", 0.05, 0.0001, 0.5)),
        min_effect=float(number("min_effect", 1.10, 1.0, 100.0)),
        confidence=float(number("confidence", 0.95, 0.5, 0.999)),
        resamples=int(number("resamples", 2000, 100, 100000, integer=True)),
        seed=int(number("seed", 20261127, 0, 2**63 - 1, integer=True)),
    )


def default_gate_file(profile: str) -> Path:
    """gates/<profile>.toml, the file `codesync-load gate --profile P` reads unless --gates is given."""
    return GATES_DIR / f"{profile}.toml"


# -- evaluation -------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between order statistics."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def client_value(metric: Metric, doc: dict[str, Any]) -> tuple[float | None, str]:
    """(value, note) of a client metric on one ledger document; None when there are no samples."""
    if metric.func in SCALARS:
        if metric.func == "error_rate":
            bad, total = _http_errors(doc)
            if not total:
                return None, "nothing to judge: the ledger records no HTTP attempt"
            return _error_rate(doc), f"{bad}/{total} HTTP attempts"
        return SCALARS[metric.func][1](doc), ""
    samples = [float(v) for v in (doc.get("samples") or {}).get(metric.series, [])]
    if metric.func == "count":
        return float(len(samples)), ""
    if not samples:
        return None, f"no {metric.series} samples in the ledger"
    pct = _PCT_RE.match(metric.func)
    if pct:
        value = percentile(samples, float(pct["q"]))
    elif metric.func == "median":
        value = percentile(samples, 50.0)
    elif metric.func == "mean":
        value = math.fsum(samples) / len(samples)
    elif metric.func == "min":
        value = min(samples)
    else:
        value = max(samples)
    return value, f"n={len(samples)}"


def format_value(metric: Metric, value: float | None, unit: str = "") -> str:
    """A value as a reader wants it: latencies in ms/s, ratios in %, server values in the threshold's unit."""
    if value is None or math.isnan(value):
        return "no data"
    if unit == "ms":
        return f"{value * 1000:.4g}ms"
    if unit == "%":
        return f"{value * 100:.3g}%"
    if metric.kind == "latency":
        return f"{value * 1000:.3g}ms" if value < 1 else f"{value:.3g}s"
    if metric.kind == "ratio":
        return f"{value * 100:.3g}%"
    if metric.kind == "count":
        return f"{value:g}"
    return f"{value:.6g}"


@dataclass
class WindowQuery:
    """Where and when a server metric is evaluated: a Prometheus, the load window, the eval time."""

    prom: Any  # verify.prom.Prom
    start: float
    at: float

    @property
    def range_text(self) -> str:
        return f"{max(1, math.ceil(self.at - self.start))}s"

    def expand(self, promql: str) -> str:
        return promql.replace("$__range", self.range_text)


def server_values(metric: Metric, query: WindowQuery) -> list[tuple[dict[str, str], float]]:
    """Every (labels, value) the PromQL returns at the end of the window ($__range expanded)."""
    return [(s.labels, s.value) for s in query.prom.instant(query.expand(metric.promql), at=query.at)]


def measure(metric: Metric, doc: dict[str, Any], query: WindowQuery | None) -> float | None:
    """The single value of a metric on one trial (server: the largest series; None = no data)."""
    if metric.side == "client":
        return client_value(metric, doc)[0]
    if query is None:
        raise HarnessError(f"{metric.text} needs Prometheus; run it through `codesync-load gate` or pass one")
    values = [v for _, v in server_values(metric, query) if not math.isnan(v)]
    return max(values) if values else None


def evaluate_gate(gate: Gate, docs: Sequence[dict[str, Any]], queries: Sequence[WindowQuery | None]) -> CheckResult:
    """A CheckResult for one gate over every trial (it passes only when every trial does)."""
    evidence = Evidence(("trial", "series", "value", "holds", "note"))
    measured: list[str] = []
    ok = True
    for trial, (doc, query) in enumerate(zip(docs, queries, strict=True), 1):
        if gate.metric.side == "client":
            value, note = client_value(gate.metric, doc)
            rows = [("", value, note)]
        else:
            if query is None:
                raise HarnessError(f"{gate.source}: server gates need Prometheus; none is available for this run")
            expanded = query.expand(gate.metric.promql)
            rows = [(_labels(labels), v, "") for labels, v in server_values(gate.metric, query)]
            if not rows:
                rows = [("", None, "the query returned no series")]
            rows = [(s, v, n or f"at {query.at:.3f}, range {query.range_text}") for s, v, n in rows]
            if trial == 1:
                evidence.add("", "query", expanded, "", "")
        for series, value, note in rows:
            holds = value is not None and not math.isnan(value) and gate.holds(value)
            ok = ok and holds
            shown_value = format_value(gate.metric, value, gate.unit)
            evidence.add(trial, series, shown_value, "yes" if holds else "NO", note)
            measured.append(shown_value)
    shown = ", ".join(measured[:6]) + (f", ... ({len(measured)} values)" if len(measured) > 6 else "")
    expected = f"{gate.op} {gate.threshold_text}"
    what = gate.label or gate.metric.text
    if ok:
        summary = f"{what} = {shown} ({expected})"
        return CheckResult.passed(summary, measured=shown, expected=expected, evidence=evidence)
    summary = f"{what} = {shown}, expected {expected}"
    return CheckResult.failed(summary, measured=shown, expected=expected, evidence=evidence)


def _labels(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def evaluate_gates(
    gates: Sequence[Gate], docs: Sequence[dict[str, Any]], queries: Sequence[WindowQuery | None] | None = None
) -> list[Any]:
    """One CheckResult per gate, named `gate: <text>`, over the ledgers of every trial."""
    import time

    queries = list(queries) if queries is not None else [None] * len(docs)
    results = []
    for gate in gates:
        started = time.monotonic()
        result = evaluate_gate(gate, docs, queries)
        result.name = f"gate: {gate.name}"
        result.inputs = {"gates": gate.source}
        result.seconds = time.monotonic() - started
        results.append(result)
    return results
