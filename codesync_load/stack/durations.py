"""Prometheus durations ("5m", "1h30m", "500ms") as milliseconds and back.

    >>> parse_duration("1m30s")
    90000
    >>> format_duration(90000)
    '1m30s'

Rendering configs for a time-compressed stack divides durations; doing it on integers of
milliseconds keeps "5m / 30" an exact "10s" instead of a float that Prometheus rejects.
"""

from __future__ import annotations

import re

_UNITS_MS = (
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
)
_UNIT_MS = dict(_UNITS_MS)
# Same grammar as Prometheus' model.ParseDuration: units in descending order, each at most once.
DURATION_RE = re.compile(r"(?:\d+y)?(?:\d+w)?(?:\d+d)?(?:\d+h)?(?:\d+m(?!s))?(?:\d+s)?(?:\d+ms)?")


def parse_duration(text: str) -> int:
    """Milliseconds in a Prometheus duration; ValueError for anything Prometheus would reject."""
    text = str(text).strip()
    if text == "0":
        return 0
    if not text or not DURATION_RE.fullmatch(text):
        raise ValueError(f"{text!r} is not a Prometheus duration (e.g. 30s, 5m, 1h30m)")
    return sum(int(num) * _UNIT_MS[unit] for num, unit in re.findall(r"(\d+)(ms|[ywdhms])", text))


def format_duration(ms: int) -> str:
    """The shortest Prometheus spelling of `ms` milliseconds (days and below; "0s" for zero)."""
    if ms <= 0:
        return "0s"
    parts = []
    for unit, size in _UNITS_MS[2:]:
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
