"""The report document as Markdown, for a CI job summary or a pull-request comment.

    >>> text = render_markdown(build_report([run_dir], checks=checks))
    >>> text.splitlines()[0]
    '# codesync-load report: r1 - PASS'

Sections in reading order: verdict, gates, baseline comparison, checks (each failure with
its evidence), informational checks (ran, but not part of the gate), dashboard panels
beside the harness's measurement (always, pass or fail: every panel's query, its series,
the ledger's figure, agreement and tolerance; Grafana beside Prometheus when Grafana was
asked), latency percentiles and the ledger summary of every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reports.witnesses import incident_title, witness_rows

MAX_ROWS = 40


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return " ".join(text.split()).replace("|", "\\|")


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], max_rows: int = MAX_ROWS) -> list[str]:
    lines = ["| " + " | ".join(_cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    for row in list(rows)[:max_rows]:
        cells = [_cell(v) for v in row] + [""] * (len(columns) - len(row))
        lines.append("| " + " | ".join(cells[: len(columns)]) + " |")
    if len(rows) > max_rows:
        lines.append(f"\n_... {len(rows) - max_rows} more rows (see the JSON report)_")
    return lines


def _results(title: str, items: Sequence[dict[str, Any]], shown_apart: Sequence[str] = ()) -> list[str]:
    """The verdict table, then the evidence of each failure (except `shown_apart` checks,
    whose evidence has a section of its own)."""
    if not items:
        return []
    out = [f"## {title}", ""]
    out += table(
        ("name", "verdict", "measured", "expected", "summary"),
        [
            (r.get("name"), r.get("verdict", "").upper(), r.get("measured"), r.get("expected"), r.get("summary"))
            for r in items
        ],
        max_rows=1000,
    )
    for r in items:
        if r.get("verdict") in ("fail", "error") and r.get("evidence") and r.get("name") not in shown_apart:
            ev = r["evidence"]
            out += ["", f"**{_cell(r.get('name'))}**: {_cell(r.get('summary'))}", ""]
            if r.get("tolerance"):
                out += [f"tolerance: {_cell(r['tolerance'])}", ""]
            out += table(ev.get("columns") or [], ev.get("rows") or [])
    out.append("")
    return out


def _dashboard(panels: Sequence[dict[str, Any]]) -> list[str]:
    """Every panel beside the harness's measurement (and Grafana beside Prometheus), any verdict."""
    if not panels:
        return []
    out = ["## Dashboard panels beside the harness's measurement", ""]
    for r in panels:
        out += [f"### {_cell(r.get('name'))}: {str(r.get('verdict') or '').upper()}", "", _cell(r.get("summary")), ""]
        for label in ("measured", "tolerance"):
            if r.get(label):
                out += [f"{label}: {_cell(r.get(label))}", ""]
        ev = r.get("evidence") or {}
        if ev.get("rows"):
            out += table(ev.get("columns") or [], ev["rows"])
        else:
            out.append("_no panel table: the check did not evaluate the panels_")
        out.append("")
    return out


def _seconds(value: float) -> str:
    return f"{value * 1000:.3g} ms" if value < 1 else f"{value:.3g} s"


def render_markdown(doc: dict[str, Any]) -> str:
    out = [f"# {doc['title']} - {doc['verdict'].upper()}", "", f"data as of {doc['generated_at']}", ""]
    for note in doc.get("notes") or []:
        out.append(f"- {note}")
    if doc.get("notes"):
        out.append("")
    counts = doc.get("counts") or {}
    summary = []
    for group, c in counts.items():
        if any(c.values()):
            summary.append(f"{group}: " + ", ".join(f"{n} {v}" for v, n in c.items() if n))
    if summary:
        out += ["; ".join(summary), ""]
    if doc.get("not_judged"):
        out += ["No verdict (not counted as passed):", ""] + [f"- {_cell(line)}" for line in doc["not_judged"]] + [""]
    out += _results("Gates", doc.get("gates") or [])
    out += _results("Baseline comparison", doc.get("baseline") or [])
    panels = doc.get("dashboard_panels") or []
    apart = [p.get("name") for p in panels]
    sets = doc.get("result_sets") or []
    latest = f" (latest verify set {sets[0]['name']} {sets[0]['target']})" if sets else ""
    out += _results("Checks" + latest, doc.get("checks") or [], apart)
    for earlier in sets[1:]:  # every earlier `verify` of the run, latest first, with its options
        options = ", ".join(f"{k}={v}" for k, v in earlier["options"].items() if k != "run_dir")
        out += _results(f"Earlier verify set {earlier['name']} {earlier['target']} ({options})", earlier["checks"])
    out += _results("Informational checks (not gating)", doc.get("info") or [], apart)
    out += _dashboard(panels)
    for run in doc.get("runs") or []:
        where = f"directory `{run['run_dir']}`, profile `{run.get('profile') or '?'}`"
        out += [f"## Run {run['run_id']}", "", where, ""]
        if run.get("latency"):
            out += ["### Latency percentiles (raw ledger samples)", ""]
            out += table(
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
            out.append("")
        for incident in (run.get("witnesses") or {}).get("incidents") or []:
            out += [f"### Witnesses of the {incident_title(incident)}", ""]
            out += table(("witness", "first notice", "how"), witness_rows(incident))
            out.append("")
        ledger = run.get("ledger")
        if ledger:
            out += ["### Ledger", ""]
            state = "complete" if ledger["complete"] else f"INCOMPLETE ({ledger.get('incomplete_reason')})"
            out += [f"ledger {state}", ""]
            scalars = [(k, v) for k, v in ledger.items() if isinstance(v, int | float) and not isinstance(v, bool)]
            out += table(("count", "value"), scalars)
            out += ["", "#### HTTP by route", ""]
            out += table(
                ("method", "route", "status", "count"),
                [(r["method"], r["route"], r["status"], r["count"]) for r in ledger["http"]],
            )
            out.append("")
        else:
            out += ["_no ledger in this run directory_", ""]
    return "\n".join(out).rstrip() + "\n"
