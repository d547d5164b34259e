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
    doc = build_report(run_dirs, **report_args)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "markdown": out_dir / "report.md", "html": out_dir / "report.html"}
    paths["json"].write_text(json.dumps(doc, indent=1, default=str))
    paths["markdown"].write_text(render_markdown(doc))
    paths["html"].write_text(render_html(doc))
    return paths
