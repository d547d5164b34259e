"""The report's witnesses section: for each incident, when users felt it and when each witness
(metrics, alerts, the uptime probe, error events) first noticed, as one timeline and a table.

    >>> section = read_witnesses(run_dir)          # RUN/witnesses.json as the db-outage scenario wrote it
    >>> rows = witness_rows(section["incidents"][0])    # [(witness, "+1.0 s", how), ...]
    >>> witness_charts(run_dir, "run1")            # [Chart] one per incident (inline SVG, byte-identical)

A run without witnesses.json has no incident recorded: the section is left out, not drawn empty.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from codesync_load.errors import HarnessError
from reports.plots import Chart, figure, finish

WITNESSES_FILE = "witnesses.json"  # verify.live.db_outage writes it (the report never imports verify)
_USERS = "users"


def read_witnesses(run_dir: Path) -> dict[str, Any] | None:
    """The run's witnesses document, None when the run recorded no incident."""
    path = Path(run_dir) / WITNESSES_FILE
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError as err:
        raise HarnessError(f"{path} is not valid JSON ({err}); rerun the scenario") from None
    if not isinstance(doc, dict):
        raise HarnessError(f"{path} holds no JSON object; rerun the scenario")
    return doc


def _offset(at: float | None, origin: float) -> str:
    return f"{round(at - origin, 1) + 0.0:+.1f} s" if at is not None else "never"  # + 0.0: never "-0.0"


def witness_rows(incident: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(witness, first notice relative to the incident's start, how it was read) per witness."""
    origin = float(incident["stopped_at"])
    return [(r["witness"], _offset(r.get("first_notice"), origin), r.get("how", "")) for r in incident["witnesses"]]


def incident_title(incident: dict[str, Any]) -> str:
    span = ""
    if incident.get("started_at"):
        span = f", {float(incident['started_at']) - float(incident['stopped_at']):.0f} s"
    return f"{incident.get('what', 'incident')} ({incident.get('database') or '?'}{span})"


def witness_chart(incident: dict[str, Any], name: str) -> Chart:
    """One row per witness on a time axis (s since the incident began): the incident shaded,
    the users' first failure and each witness's first notice marked; "never" written out."""
    rows = list(incident["witnesses"])
    origin = float(incident["stopped_at"])
    end = float(incident.get("started_at") or origin) - origin
    known = [float(r["first_notice"]) - origin for r in rows if r.get("first_notice") is not None]
    right = max([end, *known, 1.0]) * 1.15 + 1.0
    fig, ax = figure(height=0.35 * len(rows) + 1.0)
    ax.axvspan(0.0, end, color="#d62728", alpha=0.12, lw=0)
    ax.text(end / 2, 0.99, "database down", transform=ax.get_xaxis_transform(), ha="center", va="top", fontsize=6.5)
    for y, row in enumerate(rows):
        at = row.get("first_notice")
        users = row["witness"] == _USERS
        if at is None:
            ax.text(0.2, y, "never noticed", va="center", fontsize=7, color="#777777")
            continue
        x = float(at) - origin
        ax.plot([x], [y], marker="o" if users else "D", color="#d62728" if users else "#1f77b4", ms=6)
        ax.text(x, y + 0.25, _offset(float(at), origin), ha="center", fontsize=6.5)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([r["witness"] for r in rows])
    ax.set_ylim(len(rows) - 0.4, -0.8)
    ax.set_xlim(min([-1.0, *known]) - 0.5, right)
    ax.axvline(0.0, color="#555555", lw=0.8)
    ax.set_xlabel("s since the database was stopped")
    ax.set_title(f"Who noticed the {incident_title(incident)}, and when")
    return finish(fig, name, f"witnesses timeline: {incident_title(incident)}")


def witness_charts(run_dir: Path, slug: str) -> list[Chart]:
    """The run's timelines, one per incident ([] when the run recorded none)."""
    doc = read_witnesses(run_dir)
    if not doc:
        return []
    return [witness_chart(inc, f"{slug}-witnesses-{i + 1}") for i, inc in enumerate(doc.get("incidents") or [])]
