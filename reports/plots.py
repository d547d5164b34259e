"""Charts as inline SVG (and PNG copies) with matplotlib's Agg backend, byte-identical per input.

    >>> fig, ax = figure()
    >>> ax.plot(x, y)
    >>> chart = finish(fig, "load")          # Chart(name="load", svg="<svg ...", png=b"\\x89PNG...")

Why these rules: the HTML report must be one self-contained file that opens offline, so each
chart is inline SVG with text kept as paths (no font needed) and no external reference; a
report built twice from one run directory must be byte-identical, so the SVG carries no date
(`metadata={"Date": None}`), matplotlib's random ids are seeded (`svg.hashsalt`) and then
prefixed with the chart's own name, so two charts in one page never share an id. The PNG
copies are for the Markdown report (GitHub renders no inline SVG there).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

STYLE = {
    "svg.hashsalt": "codesync-load",
    "svg.fonttype": "none",  # text as <text>: no glyph paths to lay out; any sans-serif shows it
    "font.size": 8.0,
    "axes.titlesize": 9.0,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.fontsize": 6.5,
    "figure.dpi": 100,
    "path.simplify": True,
}
PNG_DPI = 90
# The report process draws only report charts: the style is set once, for every artist
# (a legend made outside an rc_context would not get it).
matplotlib.rcParams.update(STYLE)
_ID_RE = re.compile(r'(id="|url\(#|xlink:href="#|href="#)([A-Za-z_][\w.-]*)')


@dataclass(frozen=True)
class Chart:
    name: str
    svg: str
    png: bytes
    alt: str = ""


def figure(rows: int = 1, cols: int = 1, width: float = 9.0, height: float = 2.6, **kwargs: Any) -> tuple[Any, Any]:
    """A new figure with the report's style; `height` is per row (inches)."""
    fig, axes = plt.subplots(rows, cols, figsize=(width, height * rows), squeeze=False, **kwargs)
    return fig, axes if rows * cols > 1 else axes[0][0]


def _prefixed(svg: str, name: str) -> str:
    prefix = re.sub(r"[^\w-]", "-", name) + "-"
    return _ID_RE.sub(lambda m: m.group(1) + prefix + m.group(2), svg)


def finish(fig: Any, name: str, alt: str = "", png: bool = True) -> Chart:
    """Render `fig` to SVG (no XML prolog, ids prefixed by `name`) and PNG (unless `png` is
    False: only the key charts get a copy for the Markdown), then close it."""
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    image = io.BytesIO()
    if png:
        fig.savefig(image, format="png", dpi=PNG_DPI, metadata={"Software": None})
    plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    svg = _prefixed(text, name)
    if alt:
        svg = svg.replace("<svg ", f'<svg role="img" aria-label="{_attr(alt)}" ', 1)
    return Chart(name, svg, image.getvalue(), alt)


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def shade_phases(ax: Any, phases: list[dict[str, Any]], t0: float) -> None:
    """Alternate light bands for the load phases, named at the top of the axes."""
    for i, phase in enumerate(phases):
        if phase.get("end") is None:
            continue
        start, end = phase["start"] - t0, phase["end"] - t0
        ax.axvspan(start, end, color="#999999" if i % 2 else "#cccccc", alpha=0.12, lw=0)
        ax.text(
            (start + end) / 2, 1.0, str(phase.get("name", "")), transform=ax.get_xaxis_transform(),
            ha="center", va="bottom", fontsize=6.5, color="#555555",
        )  # fmt: skip


def empty(ax: Any, why: str) -> None:
    """An axes that says why it has nothing to draw (never a blank box)."""
    ax.text(0.5, 0.5, why, transform=ax.transAxes, ha="center", va="center", fontsize=7.5, color="#777777", wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])
