"""Reports of a run or a gate: HTML, Markdown and JSON from one document, plus JUnit XML.

    >>> from reports import write_reports
    >>> paths = write_reports([run_dir], out_dir=run_dir / "report", checks=checks, gates=gates)
    >>> sorted(p.name for p in paths.values())
    ['report.html', 'report.json', 'report.md']

`reports.build` makes the document, `reports.html` / `reports.markdown` render it,
`reports.junit` writes the CI XML. reports/runs/ holds run output and is not part of the
package.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reports.build import build_report
from reports.html import render_html
from reports.markdown import render_markdown

__all__ = ["build_report", "render_html", "render_markdown", "write_reports"]


def write_reports(run_dirs: Sequence[Path], out_dir: Path, **report_args: Any) -> dict[str, Path]:
    """Write out_dir/report.{json,md,html}; returns {"json": path, "markdown": path, "html": path}.

    `report_args` are build_report's keywords (checks, gates, baseline, info, title, notes,
    verdict), passed through so the two signatures cannot drift apart.
    """
    from reports.figures import report_charts

    doc = build_report(run_dirs, **report_args)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    charts, missing = report_charts(run_dirs, doc)
    doc["missing"] = missing
    paths = {"json": out_dir / "report.json", "markdown": out_dir / "report.md", "html": out_dir / "report.html"}
    paths["json"].write_text(json.dumps(doc, indent=1, default=str))
    images = write_pngs(charts, out_dir)
    paths["markdown"].write_text(render_markdown(doc) + markdown_images(images, missing))
    paths["html"].write_text(render_html(doc, charts, missing))
    return paths


def write_pngs(charts: dict[str, Any], out_dir: Path) -> list[tuple[str, str]]:
    """The key charts' PNG copies beside the Markdown (panel charts have none); (alt, file name) pairs."""
    images = []
    for section in charts.values():
        for chart in section:
            if chart.png:
                name = f"{chart.name}.png"
                (out_dir / name).write_bytes(chart.png)
                images.append((chart.alt or chart.name, name))
    return images


def markdown_images(images: Sequence[tuple[str, str]], missing: Sequence[str]) -> str:
    """The Markdown's chart section: relative links to the PNG copies, then what is missing."""
    out = []
    if images:
        out += ["", "## Charts", ""] + [f"![{alt}]({name})" for alt, name in images]
    if missing:
        out += ["", "## Missing from this report", ""] + [f"- {line}" for line in missing]
    return "\n".join(out) + ("\n" if out else "")
