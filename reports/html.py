"""The report document as one self-contained HTML page (inline CSS, no scripts, no external assets).

    >>> page = render_html(build_report([run_dir], checks=checks, gates=gates))
    >>> "<script" in page, "http" in page.split("<body>")[0]
    (False, False)

Self-contained on purpose: a CI artifact is opened from a zip or an object store where
relative links and CDNs are gone. Every value is escaped, since check summaries quote
PromQL and label values that may hold `<` and `&`.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from reports.witnesses import incident_title, witness_rows

MAX_ROWS = 200
STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1400px}
h1 .pass,td.pass{color:#176f2c}h1 .fail,td.fail,h1 .error,td.error{color:#b3261e}td.skip{color:#777}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .5em;
text-align:left;vertical-align:top;font-size:.9em}th{background:#f2f2f2}code{background:#f6f6f6}
details{margin:.3em 0 1em}summary{cursor:pointer}figure.chart{margin:.5em 0;display:inline-block;max-width:100%}
figure.chart svg{max-width:100%;height:auto}.muted{color:#777}td.yes{color:#176f2c}td.no{color:#b3261e}
"""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return escape(text)


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], verdict_col: int | None = None) -> str:
    head = "".join(f"<th>{_cell(c)}</th>" for c in columns)
    body = []
    for row in list(rows)[:MAX_ROWS]:
        cells = []
        for i, value in enumerate(row):
            cls = f' class="{escape(str(value).lower())}"' if i == verdict_col else ""
            cells.append(f"<td{cls}>{_cell(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = ""
    if len(rows) > MAX_ROWS:
        more = f'<p class="muted">... {len(rows) - MAX_ROWS} more rows in the JSON report</p>'
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{more}"


def _results(title: str, items: Sequence[dict[str, Any]], shown_apart: Sequence[str] = ()) -> str:
    """The verdict table, then each result's evidence (open when it failed); the evidence of
    `shown_apart` checks has a section of its own and is not repeated here."""
    if not items:
        return ""
    parts = [f"<h2>{escape(title)}</h2>"]
    parts.append(
        table(
            ("name", "verdict", "measured", "expected", "summary"),
            [(r.get("name"), r.get("verdict"), r.get("measured"), r.get("expected"), r.get("summary")) for r in items],
            verdict_col=1,
        )
    )
    for r in items:
        ev = r.get("evidence")
        if not ev or not ev.get("rows") or r.get("name") in shown_apart:
            continue
        open_attr = " open" if r.get("verdict") in ("fail", "error") else ""
        tolerance = f"<p>tolerance: {_cell(r.get('tolerance'))}</p>" if r.get("tolerance") else ""
        parts.append(
            f"<details{open_attr}><summary><b>{_cell(r.get('name'))}</b> ({_cell(r.get('verdict'))}): "
            f"{_cell(r.get('summary'))}</summary>{tolerance}{table(ev.get('columns') or [], ev['rows'])}</details>"
        )
    return "".join(parts)


def _dashboard(panels: Sequence[dict[str, Any]]) -> str:
    """Every panel beside the harness's measurement (and Grafana beside Prometheus), any verdict."""
    if not panels:
        return ""
    parts = ["<h2>Dashboard panels beside the harness's measurement</h2>"]
    for r in panels:
        verdict = escape(str(r.get("verdict") or ""))
        parts.append(f"<h3>{_cell(r.get('name'))}: <span class='{verdict}'>{verdict.upper()}</span></h3>")
        parts.append(f"<p>{_cell(r.get('summary'))}</p>")
        for label in ("measured", "tolerance"):
            if r.get(label):
                parts.append(f"<p class='muted'>{label}: {_cell(r.get(label))}</p>")
        ev = r.get("evidence") or {}
        columns = list(ev.get("columns") or [])
        if ev.get("rows"):
            agrees = columns.index("agrees") if "agrees" in columns else None
            parts.append(table(columns, ev["rows"], verdict_col=agrees))
        else:
            parts.append("<p class='muted'>no panel table: the check did not evaluate the panels</p>")
    return "".join(parts)


def _seconds(value: float) -> str:
    return f"{value * 1000:.3g} ms" if value < 1 else f"{value:.3g} s"


def _charts(title: str, charts: Sequence[Any], note: str = "") -> str:
    """A section of inline SVG charts (reports.plots.Chart), or nothing when there are none."""
    if not charts:
        return ""
    body = "".join(f"<figure class='chart' id='{escape(c.name)}'>{c.svg}</figure>" for c in charts)
    return f"<h2>{escape(title)}</h2>" + (f"<p class='muted'>{escape(note)}</p>" if note else "") + body


def _reconciliation(items: Sequence[dict[str, Any]]) -> str:
    """The reconciliation checks (the ledger held against the target's metrics) in one table,
    then the evidence rows of each that has them, open."""
    from reports.figures import is_reconciliation

    found = [r for r in items if is_reconciliation(str(r.get("name") or ""))]
    if not found:
        return ""
    parts = ["<h2>Reconciliation: the ledger beside the target's metrics</h2>"]
    parts.append(
        table(
            ("check", "verdict", "measured", "summary"),
            [(r.get("name"), r.get("verdict"), r.get("measured"), r.get("summary")) for r in found],
            verdict_col=1,
        )
    )
    for r in found:
        ev = r.get("evidence") or {}
        if ev.get("rows"):
            parts.append(f"<h3>{_cell(r.get('name'))}</h3>{table(ev.get('columns') or [], ev['rows'])}")
    return "".join(parts)


def render_html(
    doc: dict[str, Any], charts: dict[str, Sequence[Any]] | None = None, missing: Sequence[str] = ()
) -> str:
    """The page; `charts` (section -> reports.plots.Chart list) puts the plots in the issue's
    order: verdict and failures, load, latency, propagation, reconciliation, panels, alerts,
    resources, then each run's tables. `missing` lists what the run directory could not give."""
    charts = charts or {}
    verdict = escape(doc["verdict"])
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(doc['title'])}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(doc['title'])}: <span class='{verdict}'>{verdict.upper()}</span></h1>",
        f"<p class='muted'>data as of {escape(doc['generated_at'])}</p>",
    ]
    if doc.get("notes"):
        parts.append("<ul>" + "".join(f"<li>{escape(n)}</li>" for n in doc["notes"]) + "</ul>")
    counts = doc.get("counts") or {}
    rows = [(g, c["pass"], c["fail"], c["skip"], c["error"]) for g, c in counts.items() if any(c.values())]
    if rows:
        parts.append(table(("group", "pass", "fail", "skip", "error"), rows))
    if doc.get("not_judged"):
        parts.append("<p>No verdict (not counted as passed):</p><ul>")
        parts.append("".join(f"<li>{escape(line)}</li>" for line in doc["not_judged"]) + "</ul>")
    parts.append(_results("Gates", doc.get("gates") or []))
    parts.append(_results("Baseline comparison", doc.get("baseline") or []))
    panels = doc.get("dashboard_panels") or []
    apart = [p.get("name") for p in panels]
    sets = doc.get("result_sets") or []
    latest = f" (latest verify set {sets[0]['name']} {sets[0]['target']})" if sets else ""
    parts.append(_results("Checks" + latest, doc.get("checks") or [], apart))
    for earlier in sets[1:]:  # every earlier `verify` of the run, latest first, with its options
        options = ", ".join(f"{k}={v}" for k, v in earlier["options"].items() if k != "run_dir")
        title = f"Earlier verify set {earlier['name']} {earlier['target']} ({options})"
        parts.append(_results(title, earlier["checks"]))
    parts.append(_results("Informational checks (not gating)", doc.get("info") or [], apart))
    if missing:
        parts.append("<h2>Missing from this report</h2><ul class='missing'>")
        parts.append("".join(f"<li>{escape(line)}</li>" for line in missing) + "</ul>")
    parts.append(_charts("Load offered over time", charts.get("load") or []))
    parts.append(
        _charts(
            "Client latency per request type over time",
            charts.get("latency") or [],
            "Locust's percentiles over its recent responses (whole milliseconds), per request type",
        )
    )
    parts.append(_charts("Edit propagation", charts.get("propagation") or [], "raw ledger samples, sub-ms kept"))
    parts.append(_reconciliation([*(doc.get("checks") or []), *(doc.get("info") or [])]))
    parts.append(_dashboard(panels))
    parts.append(
        _charts(
            "Every dashboard panel over time, beside the harness's own measurement",
            charts.get("panels") or [],
            "solid: the panel's query from the metrics snapshot; "
            "dashed: the harness's measurement of the same quantity",
        )
    )
    parts.append(_charts("Alerts", charts.get("alerts") or []))
    parts.append(_charts("Target and load generator resources", charts.get("resources") or []))
    parts.append(
        _charts(
            "Witnesses: who noticed each incident, and when",
            charts.get("witnesses") or [],
            "circle: the users' first failing second; diamonds: each witness's first notice",
        )
    )
    for run in doc.get("runs") or []:
        parts.append(f"<h2>Run {escape(str(run['run_id']))}</h2>")
        parts.append(
            f"<p>directory <code>{escape(run['run_dir'])}</code>, profile "
            f"<code>{escape(str(run.get('profile') or '?'))}</code></p>"
        )
        if run.get("latency"):
            parts.append("<h3>Latency percentiles (raw ledger samples)</h3>")
            parts.append(
                table(
                    ("series", "n", "mean", "p50", "p90", "p95", "p99", "max"),
                    [
                        (
                            r["series"],
                            r["n"],
                            _seconds(r["mean"]),
                            _seconds(r["p50"]),
                            _seconds(r["p90"]),
                            _seconds(r["p95"]),
                            _seconds(r["p99"]),
                            _seconds(r["max"]),
                        )
                        for r in run["latency"]
                    ],
                )
            )
        for incident in (run.get("witnesses") or {}).get("incidents") or []:
            parts.append(f"<h3>Witnesses of the {escape(incident_title(incident))}</h3>")
            parts.append(table(("witness", "first notice", "how"), witness_rows(incident)))
        ledger = run.get("ledger")
        if ledger:
            state = "complete" if ledger["complete"] else f"INCOMPLETE ({ledger.get('incomplete_reason')})"
            parts.append(f"<h3>Ledger ({escape(state)})</h3>")
            scalars = [(k, v) for k, v in ledger.items() if isinstance(v, int | float) and not isinstance(v, bool)]
            parts.append(table(("count", "value"), scalars))
            parts.append("<h4>HTTP by route</h4>")
            parts.append(
                table(
                    ("method", "route", "status", "count"),
                    [(r["method"], r["route"], r["status"], r["count"]) for r in ledger["http"]],
                )
            )
        else:
            parts.append("<p class='muted'>no ledger in this run directory</p>")
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)
