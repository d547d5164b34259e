"""The samples of a Prometheus text exposition page, for exact and partial label look-ups.

    >>> before = scrape("http://127.0.0.1:4000/metrics", token)
    >>> value(before, "codesync_http_requests_total", method="GET", route="/health", status_code="200")
    12.0
    >>> delta(before, scrape(url, token), "codesync_errors_total", code="CSRF_MISSING")  # other labels summed
    1.0

Why one module: the twin's tests, the load tests and the harness all read /metrics pages
and count how far a series moved; they should agree on what a sample is. Parsing is
prometheus_client's own parser, so a malformed page raises instead of being half read.
"""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families

# (sample name as exposed: x_total, x_bucket, x_count, x_sum, a gauge; frozenset of label pairs)
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

__all__ = ["Samples", "delta", "parse_samples", "scrape", "total", "value"]


def parse_samples(text: str) -> Samples:
    """Every sample of an exposition page, keyed by (sample name, frozenset of label pairs)."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def scrape(url: str, token: str | None = None, timeout: float = 5.0) -> Samples:
    """GET a /metrics URL (with `Authorization: Bearer token` when given) and parse it.

    A non-2xx answer raises requests.HTTPError: a scrape that was refused is not "all zero".
    """
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = requests.get(url, headers=headers, timeout=timeout)
    response.raise_for_status()
    return parse_samples(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    """The value of the sample with exactly these labels, 0.0 when it is absent."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over every sample of `name` whose labels include `labels` (others free)."""
    wanted = set(labels.items())
    return sum(v for (n, lbls), v in samples.items() if n == name and wanted <= lbls)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """How far the sum of matching samples moved between two scrapes."""
    return total(after, name, **labels) - total(before, name, **labels)
