"""The capacity report: X(N) and R(N) with the USL fit, the knee, the SLO line and the excluded
steps, then the per-step table, the regressions, Little's law and the projection's assumptions.

    >>> paths = write_capacity_report(result, out_dir)     # capacity.html, capacity.json, capacity.md

One self-contained HTML page (inline SVG, reports.plots), byte-identical for one result.
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from reports.html import STYLE, table
from reports.plots import Chart, empty, figure, finish

STEP_COLUMNS = (
    ("users", "N users"),
    ("x_rps", "X req/s"),
    ("server_http_rps", "target HTTP/s"),
    ("yjs_updates_ps", "Yjs updates/s"),
    ("r_mean_s", "R mean s"),
    ("r_p50_s", "p50 s"),
    ("r_p95_s", "p95 s"),
    ("r_p99_s", "p99 s"),
    ("error_share", "errors"),
    ("rate_limit_share", "429 share"),
    ("target_cpu_cores", "target CPU"),
    ("target_rss_bytes", "target RSS"),
    ("generator_cpu_mean", "Locust CPU %"),
    ("little_dev", "Little dev"),
    ("slo_ok", "SLO"),
    ("slo_missed", "SLO gates missed"),
    ("excluded", "excluded from fit"),
)


def _charts(result: dict[str, Any]) -> list[Chart]:
    from codesync_load.capacity.usl import usl

    steps = result.get("steps") or []
    fig, axes = figure(1, 2, width=11.0, height=3.4)
    ax_x, ax_r = axes[0]
    if not steps:
        empty(ax_x, "no steps")
        empty(ax_r, "no steps")
        return [finish(fig, "capacity", "throughput and latency against concurrency")]
    n = np.array([s["users"] for s in steps], dtype=float)
    x = np.array([s["x_rps"] if s["x_rps"] is not None else np.nan for s in steps], dtype=float)
    r = np.array([s["r_mean_s"] if s["r_mean_s"] is not None else np.nan for s in steps], dtype=float)
    p95 = np.array([s["r_p95_s"] if s["r_p95_s"] is not None else np.nan for s in steps], dtype=float)
    excluded = np.array([bool(s["excluded"]) for s in steps])
    ax_x.plot(n[~excluded], x[~excluded], "o", color="#1f77b4", label="steps (fitted)")
    if excluded.any():
        ax_x.plot(n[excluded], x[excluded], "x", color="#c62828", ms=8, label="excluded (generator saturated)")
    fit = result.get("usl")
    if fit:
        shown_peak = math.isfinite(fit["n_star"]) and fit["n_star"] <= 3 * n.max()
        right = max(n.max() * 1.3, fit["n_star"] * 1.2) if shown_peak else n.max() * 1.3
        grid = np.linspace(max(1.0, n.min() * 0.5), right, 200)
        ax_x.plot(grid, usl(grid, fit["lam"], fit["sigma"], fit["kappa"]), "-", color="#ff7f0e",
                  label=f"USL: sigma {fit['sigma']:.3g}, kappa {fit['kappa']:.3g}, R2 {fit['r2']:.2f}")  # fmt: skip
        if shown_peak:
            ax_x.axvline(fit["n_star"], color="#ff7f0e", ls=":", lw=1)
            ax_x.annotate(f"N* {fit['n_star']:.3g}", (fit["n_star"], ax_x.get_ylim()[1] * 0.05), fontsize=7)
        else:
            ax_x.annotate(f"N* {fit['n_star']:.3g}: beyond the tested range", (0.02, 0.92),
                          xycoords="axes fraction", fontsize=7)  # fmt: skip
    ax_x.set_xlabel("concurrent users N")
    ax_x.set_ylabel("X(N) requests/s")
    ax_x.set_title("throughput X(N), USL fit over the raw points")
    ax_x.legend(loc="lower right", frameon=False)
    ax_r.plot(n, r * 1000, "o-", label="R mean")
    ax_r.plot(n, p95 * 1000, "s--", ms=3, label="p95")
    if excluded.any():
        ax_r.plot(n[excluded], r[excluded] * 1000, "x", color="#c62828", ms=8, label="excluded")
    if result.get("knee_users") is not None:
        ax_r.axvline(result["knee_users"], color="#2ca02c", ls=":", lw=1.2, label=f"knee N={result['knee_users']:g}")
    if result.get("n_at_slo") is not None:
        ax_r.axvline(
            result["n_at_slo"], color="#9467bd", ls="-.", lw=1.2, label=f"largest N at SLO {result['n_at_slo']}"
        )
    ax_r.set_xlabel("concurrent users N")
    ax_r.set_ylabel("ms")
    ax_r.set_title("latency R(N)")
    ax_r.legend(loc="upper left", frameon=False)
    return [finish(fig, "capacity", "throughput and latency against concurrency")]


def _fmt(key: str, value: Any) -> Any:
    if value is None:
        return "-"
    if key == "target_rss_bytes" and isinstance(value, float):
        return f"{value / 2**20:.1f} MiB"
    if key in ("error_share", "rate_limit_share", "little_dev") and isinstance(value, float):
        return f"{value:+.1%}" if key == "little_dev" else f"{value:.2%}"
    if key == "slo_ok":
        return "pass" if value else "fail"
    return value


def render_capacity_html(result: dict[str, Any], charts: list[Chart]) -> str:
    line = escape(result["verdict_line"])
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>capacity: {escape(Path(result['run_dir']).name)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Capacity of one instance</h1><p><b>{line}</b></p>",
        f"<p class='muted'>run directory <code>{escape(result['run_dir'])}</code></p>",
    ]
    if result.get("problems"):
        parts.append("<h2>Partial: what could not be computed</h2><ul>")
        parts += [f"<li>{escape(p)}</li>" for p in result["problems"]]
        parts.append("</ul>")
    parts.append("<h2>Throughput and latency against concurrency</h2>")
    parts += [f"<figure class='chart'>{c.svg}</figure>" for c in charts]
    steps = result.get("steps") or []
    keys = [k for k, _ in STEP_COLUMNS if any(k in s for s in steps)]
    parts.append("<h2>Steps (steady part only)</h2>")
    parts.append(table([dict(STEP_COLUMNS)[k] for k in keys], [[_fmt(k, s.get(k)) for k in keys] for s in steps]))
    if result.get("usl"):
        u = result["usl"]
        parts.append("<h2>Universal Scalability Law</h2>")
        parts.append(
            table(
                ("lambda (req/s of one)", "sigma", "kappa", "N*", "X at N*", "R2", "RMSE", "points"),
                [
                    (
                        u["lam"],
                        f"{u['sigma']:.4g} ± {u['sigma_se']:.2g}",
                        f"{u['kappa']:.4g} ± {u['kappa_se']:.2g}",
                        u["n_star"],
                        u["x_max"],
                        u["r2"],
                        u["rmse"],
                        u["points"],
                    )
                ],
            )
        )
    parts.append("<h2>Little's law</h2>")
    think = result.get("think_time_s")
    parts.append(
        f"<p>Z (think time and client time outside the server) = {think:.4g} s; steps flagged where X differs "
        "from N / (R + Z) by more than the margin: "
        + escape(", ".join(str(s["users"]) for s in steps if s.get("little_flag")) or "none")
        + "</p>"
        if think is not None
        else "<p class='muted'>not computed: no step with throughput and latency</p>"
    )
    regs = result.get("regressions") or {}
    if regs:
        parts.append("<h2>Regressions on the target's own metrics</h2>")
        parts.append(
            table(
                ("quantity", "slope", "intercept", "R2", "points"),
                [(k, v["slope"], v["intercept"], v["r2"], v["points"]) for k, v in regs.items()],
            )
        )
    proj = result.get("projection")
    if proj:
        parts.append("<h2>Projection</h2>")
        parts.append(f"<p>{proj['target_editors']} concurrent editors need <b>{proj.get('instances') or '?'}</b> "
                     "instances. Assumptions:</p><ul>")  # fmt: skip
        parts += [f"<li>{escape(a)}</li>" for a in proj["assumptions"]]
        parts.append("</ul>")
        if proj.get("problem"):
            parts.append(f"<p class='fail'>{escape(proj['problem'])}</p>")
    if result.get("slo"):
        slo = result["slo"]
        parts.append("<h2>SLO</h2>")
        parts.append(
            f"<p>gate file <code>{escape(slo['file'])}</code>; per step: {escape(', '.join(slo['gates']))}</p>"
        )
        if slo.get("not_applied"):
            parts.append("<ul>" + "".join(f"<li class='muted'>{escape(n)}</li>" for n in slo["not_applied"]) + "</ul>")
    parts.append("<h2>Method</h2><ul>")
    parts += [f"<li><b>{escape(k)}</b>: {escape(v)}</li>" for k, v in result["method"].items()]
    parts.append("</ul></body></html>")
    return "\n".join(parts)


def write_capacity_report(result: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = _charts(result)
    paths = {"json": out_dir / "capacity.json", "html": out_dir / "capacity.html", "png": out_dir / "capacity.png"}
    paths["json"].write_text(json.dumps(result, indent=1, default=str))
    paths["html"].write_text(render_capacity_html(result, charts))
    paths["png"].write_bytes(charts[0].png)
    return paths
