"""Prometheus reads for the checks, through prometheus-api-client, with one-line failures.

    >>> prom = Prom("http://127.0.0.1:9090")
    >>> prom.instant('sum(codesync_sessions_active{job="codesync-backend"})', at=1700000000.0)
    [Sample(labels={}, value=3.0)]
    >>> prom.series(['{job="codesync-backend"}'], start, end)   # [{"__name__": ..., "job": ...}, ...]

Why a wrapper: every check speaks in (labels, value) pairs at an epoch time, and an
unreachable Prometheus or a query it rejects must end the verification with one line that
names the URL and the query (HarnessError, exit 2), not with a requests traceback.

Once this Prometheus has answered, a later failure (it stopped answering, or failed a query
mid-verify) is a PrometheusLost instead: the check that met it is marked `error` ("cannot
judge ...: Prometheus at URL ...") and the other checks still run. After it stopped answering
every later call fails at once with the same reason, so a dead Prometheus costs one timeout,
not one per query.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from codesync_load.errors import HarnessError
from codesync_load.urls import require_http_url


class PrometheusLost(HarnessError):
    """A Prometheus that had answered failed a call later in the same verification.

    A HarnessError (one line, exit 2) wherever it escapes; the check runner catches it first and
    marks only the check that needed the answer as `error`, since the other checks' inputs may
    not need Prometheus at all.
    """


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float

    def key(self, names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(self.labels.get(n, "") for n in names)


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    points: list[tuple[float, float]]


class Prom:
    """A Prometheus HTTP API at `url`."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        from prometheus_api_client.prometheus_connect import PrometheusConnect

        self.url = require_http_url(url, "Prometheus URL", "http://127.0.0.1:9090 (--prometheus-url)").rstrip("/")
        self._client = PrometheusConnect(url=self.url, disable_ssl=True, timeout=timeout)
        self.timeout = timeout
        self.answered = False  # has answered a call: a later failure is PrometheusLost
        self.lost: str | None = None  # why it stopped answering; every later call fails with it

    def _call(self, what: str, func, *args, **kwargs):
        if self.lost is not None:
            raise PrometheusLost(self.lost)
        try:
            result = func(*args, **kwargs)
        except Exception as err:
            text = str(err).replace("\\n", " ")
            kind = type(err).__name__
            unreachable = any(word in kind or word in text for word in ("Connection", "Max retries", "Timeout"))
            if not self.answered:
                if unreachable:
                    raise HarnessError(
                        f"Prometheus at {self.url} is unreachable ({kind}); start the stack "
                        "(`codesync-load stack up`) or pass --prometheus-url"
                    ) from None
                raise HarnessError(f"Prometheus at {self.url} rejected {what}: {text[:300]}") from None
            if unreachable:
                self.lost = (
                    f"Prometheus at {self.url} stopped answering during this verification ({kind} on {what[:120]}, "
                    f"timeout {self.timeout:g} s); restart it and verify again"
                )
                raise PrometheusLost(self.lost) from None
            raise PrometheusLost(f"Prometheus at {self.url} failed {what[:200]}: {text[:300]}") from None
        self.answered = True
        return result

    def instant(self, expr: str, at: float | None = None) -> list[Sample]:
        """Evaluate `expr` at epoch `at` (now when None); scalars come back as one unlabelled sample."""
        params = {"time": f"{at:.3f}"} if at is not None else {}
        data = self._call(f"query {expr!r}", self._client.custom_query, expr, params=params)
        if isinstance(data, list) and len(data) == 2 and not isinstance(data[0], dict):
            return [Sample({}, float(data[1]))]  # scalar / string result
        return [Sample(dict(item.get("metric", {})), float(item["value"][1])) for item in data]

    def scalar(self, expr: str, at: float | None = None) -> float | None:
        """The single value of `expr`, None when it returns nothing (NaN counts as nothing)."""
        samples = self.instant(expr, at)
        if not samples:
            return None
        value = samples[0].value
        return None if math.isnan(value) else value

    def range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        """Evaluate `expr` over [start, end] every `step` seconds."""
        data = self._call(
            f"range query {expr!r}",
            self._client.custom_query_range,
            expr,
            start_time=datetime.fromtimestamp(start, UTC),
            end_time=datetime.fromtimestamp(end, UTC),
            step=f"{max(step, 0.001):g}",
        )
        return _series(data)

    def scrapes(self, selector: str, start: float, end: float) -> list[Series]:
        """Every stored sample of the series `selector` matches in (start, end]: one point per
        scrape, at the scrape's own timestamp (a range selector evaluated at `end`)."""
        expr = f"{selector}[{max(1, math.ceil(end - start) * 1000)}ms]"
        data = self._call(f"query {expr!r}", self._client.custom_query, expr, params={"time": f"{end:.3f}"})
        return _series(data)

    def series(self, matchers: list[str], start: float, end: float) -> list[dict[str, str]]:
        """Label sets of every series matching any of `matchers` in [start, end] (/api/v1/series)."""
        return self._call(
            f"series {matchers}",
            self._client.get_series,
            datetime.fromtimestamp(start, UTC),
            datetime.fromtimestamp(end, UTC),
            params={"match[]": matchers},
        )

    def get(self, path: str) -> dict:
        """The JSON of an API path (e.g. `/api/v1/targets?state=active`), with this wrapper's
        failures: a non-2xx answer is a failure of `path`, as a rejected query is."""

        def fetch() -> dict:
            response = self._client._session.get(f"{self.url}{path}", timeout=self.timeout)
            response.raise_for_status()
            return response.json()

        return self._call(f"GET {path}", fetch)

    def _get_json(self, path: str) -> dict | None:
        response = self._call(path, self._client._session.get, f"{self.url}{path}", timeout=10)
        return response.json() if response.status_code == 200 else None

    def running_config(self) -> dict | None:
        """The configuration Prometheus runs with (/api/v1/status/config), parsed; None if unreadable."""
        import yaml

        doc = self._get_json("/api/v1/status/config")
        try:
            return yaml.safe_load(doc["data"]["yaml"]) if doc else None
        except (KeyError, TypeError, yaml.YAMLError):
            return None

    def active_targets(self) -> list[dict]:
        """/api/v1/targets?state=active: every target this Prometheus scrapes now (job label,
        scrapePool, scrapeUrl, scrapeInterval, health, lastError)."""
        return (self.get("/api/v1/targets?state=active").get("data") or {}).get("activeTargets") or []

    def target_metadata(self) -> list[dict]:
        """/api/v1/targets/metadata: every family each target declares (# TYPE), samples or not."""
        doc = self._get_json("/api/v1/targets/metadata")
        return (doc or {}).get("data") or []

    def names(self) -> list[str]:
        return self._call("label values of __name__", self._client.all_metrics)

    def last_scrape(self, job: str) -> float | None:
        """Epoch time of the newest `up` sample of `job` (None if never scraped)."""
        return self.scalar(f'max(timestamp(up{{job="{job}"}}))')

    def wait_for_scrape_since(self, job: str, moment: float, timeout: float) -> float:
        """The time of the first scrape of `job` that started after `moment`, as soon as there is one."""
        deadline = time.monotonic() + timeout
        while True:
            newest = self.last_scrape(job)
            if newest is not None and newest > moment:
                return newest
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"Prometheus at {self.url} has no scrape of job {job!r} within {timeout:g} s "
                    "before the load; is the target up? check its /targets page"
                )
            time.sleep(0.2)

    def wait_for_scrape_after(self, job: str, after: float, timeout: float, interval: float = 15.0) -> float:
        """The time of a scrape of `job` shortly after `after` (the first or second one), waiting
        for it when it has not happened yet. Never a later one: the run directory may be verified
        long after, when other traffic has moved the counters since."""
        deadline = time.monotonic() + timeout
        horizon = after + 1.5 * interval + 0.1
        while True:
            if time.time() >= horizon:
                newest = self.scalar(f'max(timestamp(up{{job="{job}"}}))', at=horizon)
                if newest is not None and newest > after:
                    return newest
                horizon += interval
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"Prometheus at {self.url} has no scrape of job {job!r} after the load ended "
                    f"({after:.1f}); is the target up? check its /targets page"
                )
            time.sleep(0.2)

    def scrape_log(self, job: str, start: float, end: float) -> list[tuple[float, float]]:
        """(start time, duration in s) of every SUCCESSFUL scrape of `job` in (start, end], oldest
        first (a job with several targets lists the scrapes of each).

        Why the duration: a sample's timestamp is when Prometheus began the scrape; the target
        renders its counters some time later (up to the duration, more on busy cores). A read
        that must hold nothing after a moment uses a scrape that had ended before it. Why only
        successful ones: a failed scrape (a timeout on busy cores) marks the target's series
        stale, so a counter read at its time is absent, not its value."""
        durations: dict[float, float] = {}
        for series in self.scrapes(f'scrape_duration_seconds{{job="{job}"}}', start, end):
            for at, value in series.points:
                durations[at] = max(durations.get(at, 0.0), value)
        ok: dict[float, bool] = {}
        for series in self.scrapes(f'up{{job="{job}"}}', start, end):
            for at, value in series.points:
                ok[at] = ok.get(at, True) and value == 1.0
        return sorted((at, durations.get(at, 0.0)) for at, good in ok.items() if good and start < at <= end)

    def last_scrape_done_before(self, job: str, moment: float, lookback: float) -> float | None:
        """The start time of the newest scrape of `job` that had ended before `moment` (within
        `lookback` s): its sample holds nothing that happened at or after `moment`."""
        done = [at for at, took in self.scrape_log(job, moment - lookback, moment) if at + took < moment]
        return done[-1] if done else None

    def first_scrape_after(self, job: str, moment: float, timeout: float, interval: float = 15.0) -> float:
        """The start time of the first scrape of `job` that began after `moment` (its sample holds
        everything up to `moment`), waiting for it when it has not happened yet. Never a later one:
        traffic after the first (a next run, live checks) must not count as this window's."""
        deadline = time.monotonic() + timeout
        while True:
            horizon = min(time.time(), moment + 4 * interval + 1)
            if horizon > moment:
                log = self.scrape_log(job, moment, horizon)
                if log:
                    return log[0][0]
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"Prometheus at {self.url} has no scrape of job {job!r} after the load ended "
                    f"({moment:.1f}); is the target up? check its /targets page"
                )
            time.sleep(0.2)


def _series(data: list[dict]) -> list[Series]:
    """A matrix result (range query, or a range selector queried at an instant) as Series."""
    return [
        Series(dict(item.get("metric", {})), [(float(t), float(v)) for t, v in item.get("values", [])]) for item in data
    ]
