"""Read one counter sample from a target's /metrics, with the bearer token when one is set.

    >>> page = read_metrics("http://127.0.0.1:4000", token)
    >>> sample(page, "codesync_rate_limit_hits_total", type="API", user_id="c123")
    5.0

Integrity checks measure deltas of exactly the series they moved (a fresh user, a fresh
client address), so they read the target directly instead of waiting on Prometheus.
"""

from __future__ import annotations

import re

from codesync_load.errors import HarnessError
from codesync_load.stack import promapi

_LINE_RE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL_RE = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')


TIMEOUT_S = 5.0


class MetricsUnreachable(OSError):
    """GET /metrics got no answer: names the page and the timeout (a check's `error`, not a crash)."""


def metrics_status(base_url: str, token: str | None) -> tuple[int, bytes]:
    """(status, body) of GET /metrics, with `Authorization: Bearer token` when `token` is given;
    MetricsUnreachable naming the page and the timeout when it does not answer."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    url = base_url.rstrip("/") + "/metrics"
    try:
        return promapi.get(url, timeout=TIMEOUT_S, headers=headers)
    except OSError as err:  # TimeoutError included: a page that never answers
        reason = getattr(err, "reason", None) or err
        raise MetricsUnreachable(f"GET {url} gave no answer within {TIMEOUT_S:g} s ({reason})") from None


def read_metrics(base_url: str, token: str | None) -> str:
    """The exposition text; MetricsUnreachable when the page does not answer, HarnessError when
    it answers other than 200 (the token is wrong: the harness cannot measure anything)."""
    status, body = metrics_status(base_url, token)
    if status != 200:
        raise HarnessError(f"{base_url}/metrics answered HTTP {status}; pass the target's METRICS_TOKEN")
    return body.decode("utf-8", errors="replace")


def sample(page: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels` (0.0 when there is none)."""
    total = 0.0
    for line in page.splitlines():
        if line.startswith("#"):
            continue
        match = _LINE_RE.match(line)
        if not match or match.group(1) != name:
            continue
        found = {key: value for key, value in _LABEL_RE.findall(match.group(2) or "")}
        if all(found.get(key) == value for key, value in labels.items()):
            total += float(match.group(3))
    return total
