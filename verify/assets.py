"""The monitoring files under test, read into small typed values.

    >>> rules = load_rules([Path("monitoring/alerts.yml")])
    >>> [r.name for r in rules if r.kind == "alert"][:2]
    ['HighErrorRate', 'HighResponseTime']
    >>> panels = load_dashboard(Path("monitoring/grafana/dashboards/codesync.json")).panels
    >>> scrape_intervals(load_yaml(Path("monitoring/prometheus.yml")))["codesync-backend"]
    10.0

Each reader turns a file that cannot be used into a HarnessError naming the file and the fix
(a missing file, YAML/JSON syntax, a rule without expr), so `codesync-load verify` pointed at
the wrong path says so in one line instead of failing every check with a traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from codesync_load.errors import HarnessError
from codesync_load.promql import PromQLError, PromQLRefs, extract, parse_duration_s

DEFAULT_GLOBAL_SCRAPE_S = 60.0  # Prometheus' own default when a config names none


def load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise HarnessError(f"{path} does not exist; pass an existing file (see codesync-load verify --help)") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise HarnessError(f"{path} is not valid YAML{where}; fix the syntax") from None
    if not isinstance(data, dict):
        raise HarnessError(f"{path} holds no YAML mapping; is it the right file?")
    return data


@dataclass(frozen=True)
class Rule:
    """One alerting or recording rule with what its expression reads."""

    kind: str  # "alert" | "record"
    name: str
    expr: str
    group: str
    source: Path
    for_s: float = 0.0
    labels: dict[str, str] = field(default_factory=dict)
    refs: PromQLRefs | None = None
    annotations: dict[str, str] = field(default_factory=dict)  # summary, description: the rule's stated intent


def _duration_s(text: object, where: str) -> float:
    """A duration from a config or rules file, or one HarnessError line naming where it stands."""
    try:
        return parse_duration_s(str(text))
    except PromQLError as err:
        raise HarnessError(f"{where}: {err}") from None


def load_rules(paths: list[Path]) -> list[Rule]:
    """Every rule of every group of every file; expressions are tokenized here (errors named)."""
    rules: list[Rule] = []
    for path in paths:
        data = load_yaml(path)
        groups = data.get("groups")
        if not isinstance(groups, list):
            raise HarnessError(f"{path} has no `groups:` list; is it a Prometheus rules file?")
        for group in groups:
            gname = str(group.get("name", "?"))
            for raw in group.get("rules") or []:
                kind = "alert" if "alert" in raw else "record" if "record" in raw else ""
                name = str(raw.get(kind, "?")) if kind else "?"
                expr = raw.get("expr")
                if not kind or not isinstance(expr, str):
                    raise HarnessError(f"{path}: group {gname} has a rule without alert/record name or expr ({name})")
                try:
                    refs = extract(expr)
                except PromQLError as err:
                    raise HarnessError(f"{path}: rule {name} has an expression that cannot be read: {err}") from None
                for_s = _duration_s(raw["for"], f"{path}: rule {name} `for`") if raw.get("for") else 0.0
                labels = {str(k): str(v) for k, v in (raw.get("labels") or {}).items()}
                annotations = {str(k): str(v) for k, v in (raw.get("annotations") or {}).items()}
                rules.append(Rule(kind, name, expr, gname, Path(path), for_s, labels, refs, annotations))
    return rules


@dataclass(frozen=True)
class Panel:
    title: str
    panel_id: Any
    exprs: tuple[str, ...]
    panel_type: str = ""
    unit: str = ""


@dataclass
class Dashboard:
    title: str
    source: Path
    panels: list[Panel]
    variables: dict[str, str]


def _walk_panels(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for item in items or []:
        if item.get("type") == "row":
            out.extend(_walk_panels(item.get("panels") or []))
        else:
            out.append(item)
    return out


def _variable_value(var: dict[str, Any]) -> str:
    """The value a dashboard variable has when the dashboard opens (its `current`, else its first option)."""
    current = var.get("current") or {}
    value = current.get("value")
    if isinstance(value, list):
        value = value[0] if len(value) == 1 else "|".join(str(v) for v in value)
    if value in (None, "", "$__all"):
        options = [o.get("value") for o in var.get("options") or [] if o.get("value") not in (None, "$__all")]
        if options:
            value = "|".join(str(o) for o in options) if current.get("value") == "$__all" else options[0]
        elif var.get("type") in ("constant", "textbox", "custom") and var.get("query"):
            value = str(var["query"]).split(",")[0].strip()
        else:
            value = ""
    return str(value)


def load_dashboard(path: Path) -> Dashboard:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise HarnessError(f"dashboard {path} does not exist; pass --dashboard with an existing JSON file") from None
    except json.JSONDecodeError as err:
        raise HarnessError(f"dashboard {path} is not valid JSON ({err.msg} at line {err.lineno}); fix it") from None
    if "dashboard" in data and "panels" not in data:  # an export wrapped for the HTTP API
        data = data["dashboard"]
    raw_panels = _walk_panels(data.get("panels") or [])
    for row in data.get("rows") or []:  # pre-5.0 schema
        raw_panels.extend(row.get("panels") or [])
    panels = []
    for raw in raw_panels:
        exprs = tuple(str(t["expr"]) for t in raw.get("targets") or [] if t.get("expr") and not t.get("hide"))
        unit = ((raw.get("fieldConfig") or {}).get("defaults") or {}).get("unit") or raw.get("format") or ""
        panels.append(Panel(str(raw.get("title", "")), raw.get("id"), exprs, str(raw.get("type", "")), str(unit)))
    variables = {}
    for var in (data.get("templating") or {}).get("list") or []:
        if var.get("type") in ("datasource",):
            continue
        variables[str(var.get("name"))] = _variable_value(var)
    return Dashboard(str(data.get("title", "")), Path(path), panels, variables)


def scrape_intervals(config: dict[str, Any]) -> dict[str, float]:
    """Job name -> scrape interval in seconds (the job's own, else the global, else 1m)."""
    global_s = _duration_s((config.get("global") or {}).get("scrape_interval", "1m"), "global scrape_interval")
    out = {}
    for job in config.get("scrape_configs") or []:
        name = str(job.get("job_name"))
        interval = job.get("scrape_interval")
        out[name] = _duration_s(interval, f"job {name} scrape_interval") if interval else global_s
    return out


def evaluation_interval(config: dict[str, Any]) -> float:
    return _duration_s((config.get("global") or {}).get("evaluation_interval", "1m"), "global evaluation_interval")
