"""Rows, ratios and verdicts of the load-generator benchmark, as a table and as Markdown.

    >>> rows = build_rows(results, idle_goal=10_000)
    >>> print(text_table(rows)); Path("RESULTS.md").write_text(markdown(rows, machine_info()))

Kept apart from the driver so that the numbers' meaning (which ratio, which target, when a
target counts as met) is written down once. Ratios are always locust / baseline from the same
run: on a shared machine absolute rates wander, the ratio of two measures taken minutes apart
on the same cores travels much better.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

THROUGHPUT_RATIO = 0.90
REST_RATIO = 0.80
IDLE_KB_MAX = 30.0


def machine_info() -> dict[str, Any]:
    """nproc, CPU model, RAM and load, from /proc (what the README quotes the figures with)."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "load_average_at_start": list(os.getloadavg()),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def _ratio(locust: float | None, raw: float | None) -> float | None:
    if locust is None or raw is None or raw == 0:
        return None
    return locust / raw


def _get(result: dict[str, Any] | None, key: str) -> float | None:
    if not result or "error" in result:
        return None
    value = result.get(key)
    return float(value) if isinstance(value, int | float) else None


def _per_cpu(result: dict[str, Any] | None, key: str = "sent_per_s") -> float | None:
    rate, share = _get(result, key), _get(result, "cpu_share")
    return rate / share if rate is not None and share else None


# Throughput rows: the users' connection (as loadtests opens it), the same bare, the old client.
THROUGHPUT_LABELS = {
    "lean": "LeanYjsConnection",
    "lean_bare": "LeanYjsConnection, no bookkeeping",
    "yjsclient": "YjsClient",
}


def build_rows(results: dict[str, dict[str, Any]], idle_goal: int) -> list[dict[str, Any]]:
    """One row per (target, measure): raw, locust, ratio, target, met ("yes", "no", "n/a")."""
    rows: list[dict[str, Any]] = []

    def add(target: str, measure: str, raw: float | None, locust: float | None, goal: str, met: bool | None) -> None:
        ratio = _ratio(locust, raw)
        verdict = "n/a" if met is None else ("yes" if met else "no")
        if raw is None or locust is None:
            verdict = "error"
        rows.append(
            {
                "target": target,
                "measure": measure,
                "raw": raw,
                "locust": locust,
                "ratio": ratio,
                "goal": goal,
                "met": verdict,
            }
        )

    for target, measures in results.items():
        tp = measures.get("throughput", {})
        for client, label in THROUGHPUT_LABELS.items():
            locust = tp.get(f"locust_{client}")
            if locust is None:
                continue
            for key, what in (("sent_per_s", "updates sent/s"), ("applied_per_s", "updates applied/s")):
                raw, value = _get(tp.get("raw"), key), _get(locust, key)
                ratio = _ratio(value, raw)
                add(
                    target,
                    f"Yjs {what} ({label})",
                    raw,
                    value,
                    f">= {THROUGHPUT_RATIO:.2f}x",
                    None if ratio is None else ratio >= THROUGHPUT_RATIO,
                )
            # The same work per CPU-second of the client process: steadier than a rate when
            # the cores are shared, and no target of its own (hence "n/a").
            add(
                target,
                f"Yjs updates sent per client CPU-second ({label})",
                _per_cpu(tp.get("raw")),
                _per_cpu(locust),
                "(efficiency)",
                None,
            )
        idle = measures.get("idle", {})
        for client in ("lean_users", "lean", "yjsclient"):
            locust = idle.get(f"locust_{client}")
            if locust is None:
                continue
            raw = idle.get("raw")
            requested = _get(locust, "requested") or 0
            if client == "yjsclient":
                label = f"YjsClient, one user each, {int(requested)} connections"
            else:
                # the row names its phase even when the phase failed (no per_user in an error)
                per_user = _get(locust, "per_user") or (1 if client == "lean_users" else None)
                shape = "one user each" if per_user == 1 else f"{int(per_user)} per user" if per_user else "pooled"
                label = f"LeanYjsConnection, {shape}"
                held_raw, held = _get(raw, "held"), _get(locust, "held")
                count_met = None if requested < idle_goal else (held is not None and held >= idle_goal)
                add(target, f"idle synced connections held ({label})", held_raw, held, f">= {idle_goal}", count_met)
            kb_raw, kb = _get(raw, "kb_per_connection"), _get(locust, "kb_per_connection")
            add(
                target,
                f"idle KB per connection ({label})",
                kb_raw,
                kb,
                f"<= {IDLE_KB_MAX:g} KB",
                None if kb is None else kb <= IDLE_KB_MAX,
            )
        rest = measures.get("rest")
        if rest:
            plain, ours = _get(rest.get("plain"), "requests_per_s"), _get(rest.get("codesync"), "requests_per_s")
            ratio = _ratio(ours, plain)
            add(
                target,
                "REST GET /health requests/s (RestClient vs FastHttpUser)",
                plain,
                ours,
                f">= {REST_RATIO:.2f}x",
                None if ratio is None else ratio >= REST_RATIO,
            )
            add(
                target,
                "REST requests per client CPU-second (RestClient vs FastHttpUser)",
                _per_cpu(rest.get("plain"), "requests_per_s"),
                _per_cpu(rest.get("codesync"), "requests_per_s"),
                "(efficiency)",
                None,
            )
    return rows


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


HEADERS = ("target", "measure", "raw", "locust", "ratio", "target ratio", "met?")


def _cells(row: dict[str, Any]) -> list[str]:
    ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
    return [row["target"], row["measure"], _fmt(row["raw"]), _fmt(row["locust"]), ratio, row["goal"], row["met"]]


def text_table(rows: list[dict[str, Any]]) -> str:
    """A fixed-width table for the terminal."""
    table = [list(HEADERS)] + [_cells(row) for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADERS))]
    out = []
    for number, line in enumerate(table):
        out.append("  ".join(cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(line)))
        if number == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def markdown(rows: list[dict[str, Any]], machine: dict[str, Any], config: dict[str, Any]) -> str:
    """The table as Markdown, preceded by the machine and the run's settings."""
    lines = [
        f"Measured {machine['date_utc']} on {machine['nproc']} CPUs ({machine['cpu_model']}), "
        f"{machine['ram_gib']} GiB RAM, Python {machine['python']}, Linux {machine['kernel']}; "
        f"load average at start {', '.join(f'{x:.1f}' for x in machine['load_average_at_start'])} "
        "(the cores were shared with the targets and with other work).",
        "",
        "Settings: " + ", ".join(f"{key} {value}" for key, value in config.items()) + ".",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join("---" for _ in HEADERS) + "|",
    ]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """Re-render a saved run: `python benchmarks/_report.py results/<stamp>.json` prints its Markdown."""
    import json

    record = json.loads(Path(argv[1]).read_text())
    rows = build_rows(record["results"], idle_goal=10_000)
    print(markdown(rows, record["machine"], record["config"]), end="")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv))
