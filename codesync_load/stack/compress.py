"""Time-compressed alert rules: every range window and every `for:` divided by a factor.

    >>> rules, notes = compress_rules(yaml.safe_load(alerts_text), factor=30, min_range_ms=4000)
    >>> rules["groups"][0]["rules"][0]["for"]
    '10s'

A rule written for production fires after `for: 5m` over `rate(...[5m])`: a test that waits
for it takes minutes. Dividing both by the same factor keeps the rule's shape (window against
hold time) while a test waits seconds. Ranges are clamped to `min_range_ms` (4 scrape
intervals) so rate() still sees enough samples; every clamp is reported in `notes`. The real
durations stay what promtool's rule tests check; this is only for the local stack.

Offsets (`offset 1h`) are left alone: they name a point in the past, not a window.
"""

from __future__ import annotations

import copy
import re

from codesync_load.stack.durations import format_duration, parse_duration

# Quoted strings in PromQL: never rewrite inside them (a regex matcher may contain "[...]").
_STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_DUR = r"\d+(?:ms|[ywdhms])(?:\d+(?:ms|[ywdhms]))*"
# A range selector `[5m]` or a subquery `[30m:1m]` / `[30m:]`.
_RANGE_RE = re.compile(rf"\[\s*({_DUR})\s*(?::\s*({_DUR})?\s*)?\]")


def _scale(ms: int, factor: float) -> int:
    return max(1, int(ms / factor)) if ms else 0


def compress_expr(expr: str, factor: float, min_range_ms: int, where: str, notes: list[str]) -> str:
    """`expr` with every range (and subquery step) divided by `factor`, ranges >= min_range_ms."""

    def replace(match: re.Match[str]) -> str:
        original = parse_duration(match.group(1))
        scaled = _scale(original, factor)
        if scaled < min_range_ms:
            notes.append(
                f"{where}: range [{match.group(1)}] / {factor:g} = {format_duration(scaled)} "
                f"clamped to {format_duration(min_range_ms)} (4 scrape intervals)"
            )
            scaled = min_range_ms
        text = f"[{format_duration(scaled)}"
        if ":" in match.group(0):
            step = match.group(2)
            text += ":" + (format_duration(max(1000, _scale(parse_duration(step), factor))) if step else "")
        return text + "]"

    out: list[str] = []
    pos = 0
    for string in _STRING_RE.finditer(expr):
        out.append(_RANGE_RE.sub(replace, expr[pos : string.start()]))
        out.append(string.group(0))
        pos = string.end()
    out.append(_RANGE_RE.sub(replace, expr[pos:]))
    return "".join(out)


def compress_rules(rules: dict, factor: float, min_range_ms: int) -> tuple[dict, list[str]]:
    """A copy of a rule file (parsed YAML) compressed by `factor`, and the list of clamps."""
    if factor <= 1:
        return copy.deepcopy(rules), []
    notes: list[str] = []
    out = copy.deepcopy(rules)
    for group in out.get("groups") or []:
        if group.get("interval"):
            group["interval"] = format_duration(max(1000, _scale(parse_duration(group["interval"]), factor)))
        for rule in group.get("rules") or []:
            where = rule.get("alert") or rule.get("record") or group.get("name", "?")
            if "expr" in rule:
                rule["expr"] = compress_expr(str(rule["expr"]), factor, min_range_ms, where, notes)
            if rule.get("for"):
                rule["for"] = format_duration(_scale(parse_duration(rule["for"]), factor))
    return out, notes


# Alertmanager route timers; repeat_interval is kept >= 1m so a firing alert is not re-sent
# every few seconds, the others >= 1s (Alertmanager's own resolution).
_ROUTE_TIMERS = {"group_wait": 1000, "group_interval": 1000, "repeat_interval": 60_000}


def compress_routes(route: dict, factor: float, notes: list[str], path: str = "route") -> None:
    """Divide the grouping timers of an Alertmanager route tree by `factor`, in place."""
    if factor <= 1:
        return
    for key, floor in _ROUTE_TIMERS.items():
        if route.get(key):
            original = route[key]
            scaled = _scale(parse_duration(original), factor)
            if scaled < floor:
                notes.append(f"alertmanager {path}.{key}: {original} / {factor:g} clamped to {format_duration(floor)}")
                scaled = floor
            route[key] = format_duration(scaled)
    for index, child in enumerate(route.get("routes") or []):
        compress_routes(child, factor, notes, f"{path}.routes[{index}]")
