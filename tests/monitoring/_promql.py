"""Find the series selectors in a PromQL expression, enough to check rules and dashboards.

    >>> [s.name for s in selectors('sum by (le) (rate(x_bucket{job="a"}[5m])) / y')]
    ['x_bucket', 'y']
    >>> selectors('up{job=~"a|b"} == 0')[0].matchers["job"]
    ('=~', 'a|b')

Why not a full parser: the checks only need which metric names an expression reads and
with which label matchers, so a scanner that skips strings, ranges, label lists of
by/without/on/ignoring and function names is enough, and promtool validates the syntax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

AGGREGATIONS = frozenset(
    [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ]
)
KEYWORDS = frozenset(
    [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "inf",
        "nan",
        "atan2",
    ]
)
LABEL_LIST_KEYWORDS = frozenset(["by", "without", "on", "ignoring", "group_left", "group_right"])
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_MATCHER = re.compile(
    r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`)\s*,?'
)


@dataclass(frozen=True)
class Selector:
    """One instant or range vector selector: metric name and label matchers (op, value)."""

    name: str
    matchers: dict[str, tuple[str, str]] = field(default_factory=dict)

    def label_matches(self, label: str, value: str) -> bool:
        """True when this selector's matcher on `label` accepts `value` (no matcher: False)."""
        if label not in self.matchers:
            return False
        op, pattern = self.matchers[label]
        if op == "=":
            return value == pattern
        if op == "!=":
            return value != pattern
        hit = re.fullmatch(pattern, value) is not None
        return hit if op == "=~" else not hit


def _skip_string(expr: str, i: int) -> int:
    quote = expr[i]
    i += 1
    while i < len(expr) and expr[i] != quote:
        i += 2 if expr[i] == "\\" and quote != "`" else 1
    return i + 1


def _skip_balanced(expr: str, i: int, open_: str, close: str) -> int:
    depth = 0
    while i < len(expr):
        ch = expr[i]
        if ch in "\"'`":
            i = _skip_string(expr, i)
            continue
        if ch == open_:
            depth += 1
        elif ch == close:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unbalanced {open_}{close} in {expr!r}")


def _parse_matchers(body: str) -> dict[str, tuple[str, str]]:
    matchers: dict[str, tuple[str, str]] = {}
    pos = 0
    body = body.strip()
    while pos < len(body):
        m = _MATCHER.match(body, pos)
        if not m:
            raise ValueError(f"cannot read label matchers {{{body}}}")
        value = m.group(3)[1:-1]
        if m.group(3)[0] != "`":
            value = value.encode().decode("unicode_escape")
        matchers[m.group(1)] = (m.group(2), value)
        pos = m.end()
    return matchers


def selectors(expr: str) -> list[Selector]:
    """Every series selector of `expr`, in order of appearance."""
    found: list[Selector] = []
    i = 0
    while i < len(expr):
        ch = expr[i]
        if ch in "\"'`":
            i = _skip_string(expr, i)
        elif ch == "[":
            i = _skip_balanced(expr, i, "[", "]")
        elif ch == "$":  # a dashboard variable outside a range, e.g. $__interval
            m = _IDENT.match(expr, i + 1)
            i = m.end() if m else i + 1
        elif ch.isdigit() or (ch == "." and i + 1 < len(expr) and expr[i + 1].isdigit()):
            m = re.compile(r"[0-9a-zA-Z_.]+").match(expr, i)
            i = m.end()
        elif ch == "{":
            end = _skip_balanced(expr, i, "{", "}")
            matchers = _parse_matchers(expr[i + 1 : end - 1])
            name = matchers.pop("__name__", ("=", ""))[1]
            found.append(Selector(name, matchers))
            i = end
        elif _IDENT.match(expr, i):
            m = _IDENT.match(expr, i)
            word, i = m.group(0), m.end()
            j = i
            while j < len(expr) and expr[j].isspace():
                j += 1
            nxt = expr[j] if j < len(expr) else ""
            if word in LABEL_LIST_KEYWORDS:
                if nxt == "(":
                    i = _skip_balanced(expr, j, "(", ")")
            elif word in KEYWORDS or word in AGGREGATIONS or nxt == "(":
                continue
            elif nxt == "{":
                end = _skip_balanced(expr, j, "{", "}")
                found.append(Selector(word, _parse_matchers(expr[j + 1 : end - 1])))
                i = end
            else:
                found.append(Selector(word))
        else:
            i += 1
    return found


def ranges(expr: str) -> list[str]:
    """The contents of every [...] of `expr` (range selectors and subqueries)."""
    return re.findall(r"\[([^\]]*)\]", expr)


def duration_seconds(text: str) -> float:
    """A Prometheus duration such as 5m, 1h30m or 15s, in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a Prometheus duration")
    return sum(float(n) * units[u] for n, u in parts)
