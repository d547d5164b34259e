"""Grafana's template variables, substituted the way Grafana does before a query reaches Prometheus.

    >>> substitute('rate(x{job="$job"}[$__rate_interval])', {"job": "codesync-backend"},
    ...            GrafanaTimes(interval_s=15, scrape_s=15, range_s=600))
    'rate(x{job="codesync-backend"}[60s])'

Grafana computes `$__interval` from the time range and the panel width, floored at the
data source's scrape interval, and `$__rate_interval` as max($__interval + scrape interval,
4 x scrape interval). The verifier evaluates a panel at one instant, so it takes
`$__interval` = the scrape interval (what a narrow time range gives), which makes
`$__rate_interval` = 4 x scrape interval, the smallest window Grafana would ever use.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class GrafanaTimes:
    interval_s: float
    scrape_s: float
    range_s: float

    @property
    def rate_interval_s(self) -> float:
        return max(self.interval_s + self.scrape_s, 4 * self.scrape_s)


def _seconds(value: float) -> str:
    return f"{max(1, math.ceil(value))}s"


_VAR_RE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)")


def substitute(expr: str, variables: dict[str, str], times: GrafanaTimes) -> str:
    """Replace built-in and dashboard variables; unknown variables are left for the caller to report."""
    builtins = {
        "__rate_interval": _seconds(times.rate_interval_s),
        "__interval": _seconds(times.interval_s),
        "__interval_ms": str(math.ceil(times.interval_s * 1000)),
        "__range": _seconds(times.range_s),
        "__range_s": str(math.ceil(times.range_s)),
        "__range_ms": str(math.ceil(times.range_s * 1000)),
    }

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name in builtins:
            return builtins[name]
        if name in variables:
            return variables[name]
        return match.group(0)

    return _VAR_RE.sub(replace, expr)


def unresolved(expr: str) -> list[str]:
    """Variables still in an expression after substitution."""
    return [m.group(0) for m in _VAR_RE.finditer(expr)]
