"""The one place the clients report to Locust: `environment.events.request`.

    >>> report(environment, "YJS", "connect+sync", 1.7, exception=None)
    >>> api = RestClient(host, LocustHttpTransport(), observers=(rest_observer(environment),))
    >>> yjs = YjsClient(url, doc, observers=(yjs_observer(environment),))
    >>> with timed(environment, "SIO", "chat round trip"):
    ...     sio.chat(session_id)

Nothing here imports Locust at import time: the environment is used by its `events.request.fire`
(and, for propagation batches, by its `stats`), so this module imports (and tests) without
gevent's patching; the clients never import it at all. Response times are float milliseconds
with sub-millisecond precision kept: Locust rounds its own percentiles, and the raw samples
belong in the ledger anyway.

Propagation latencies are the one exception to "one request event per result": a saturated
load process samples tens of thousands a second (every applied keystroke at every other
editor), and one request event each cost about a tenth of the process (benchmarks/RESULTS.md).
`yjs_observer` therefore collects them and adds them to Locust's statistics in batches, with
`StatsEntry.extend` (how Locust's master merges its workers' entries): every sample is counted,
its response time summed, min/max and the percentile histogram kept, in the second it arrived,
at most a second late (a hub timer), and always before a worker's report is serialised at the
end (test_stop, quitting). Failures are not samples: they are reported at once, by name.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from scenarios.clients.rest import ApiResult
from scenarios.clients.yjs import YjsEvent


def report(
    environment: Any,
    request_type: str,
    name: str,
    response_time_ms: float,
    *,
    response_length: int = 0,
    exception: BaseException | None = None,
    context: dict[str, Any] | None = None,
) -> None:
    """Fire one `request` event, the way Locust's own clients do."""
    environment.events.request.fire(
        request_type=request_type,
        name=name,
        response_time=float(response_time_ms),
        response_length=int(response_length),
        exception=exception,
        context=context or {},
    )


@contextlib.contextmanager
def timed(environment: Any, request_type: str, name: str, *, response_length: int = 0) -> Iterator[None]:
    """Time the block and report it; an exception is reported as the failure and re-raised."""
    started = time.perf_counter()
    try:
        yield
    except Exception as err:
        report(environment, request_type, name, (time.perf_counter() - started) * 1000.0, exception=err)
        raise
    report(environment, request_type, name, (time.perf_counter() - started) * 1000.0, response_length=response_length)


class UnexpectedStatus(Exception):
    """A REST result whose status the scenario did not expect: Locust counts it as a failure."""


def rest_observer(
    environment: Any,
    *,
    expected: Callable[[ApiResult], bool] | None = None,
) -> Callable[[ApiResult], None]:
    """An observer for RestClient that reports every call named by its route template.

    A call fails in Locust's eyes when `expected(result)` is False (default: not 2xx); the
    failure text carries the envelope's code, so Locust's failure table groups by cause.
    """
    is_expected = expected or (lambda result: result.ok)

    def observe(result: ApiResult) -> None:
        exception: BaseException | None = None
        if not is_expected(result):
            reason = result.error_code or f"HTTP_{result.status}"
            exception = UnexpectedStatus(f"{result.status} {reason}")
        report(
            environment,
            result.method,
            result.route,
            result.elapsed * 1000.0,
            response_length=len(result.body),
            exception=exception,
        )

    return observe


def yjs_observer(environment: Any, name: str = "propagation") -> Callable[[YjsEvent], None]:
    """An observer for YjsClient and LeanYjsConnection: each propagation latency sample counts
    as one YJS `name` request in Locust's statistics (in batches: `PropagationStats`).

    Every connection of a process shares the environment's one batcher per name.
    """
    batchers = _BATCHERS.setdefault(environment, {})
    batcher = batchers.get(name)
    if batcher is None:
        batcher = batchers[name] = PropagationStats(environment, "YJS", name)
    return batcher.observe


def flush_propagation(environment: Any) -> None:
    """Add every kept propagation sample of `environment` to its statistics now (a benchmark
    reading Locust's count against the ledger's; a run's end does this by itself)."""
    for batcher in _BATCHERS.get(environment, {}).values():
        batcher.flush()


_BATCHERS: weakref.WeakKeyDictionary[Any, dict[str, PropagationStats]] = weakref.WeakKeyDictionary()


class PropagationStats:
    """Latency samples into one Locust stats entry, batched per second of arrival.

    `observe(event)` keeps a latency event's milliseconds; `flush()` adds what was kept to the
    entry (`request_type`, `name`) and to Locust's total with `StatsEntry.extend`, as if each
    sample had been logged on its own: count, sum, min, max, the rounded-time histogram and the
    per-second count. A batch never spans two seconds (a sample of a new second flushes the
    last one first); a hub timer flushes every `interval` s, and Locust's test_stop, quitting
    and report_to_master events flush too, so nothing waits past a run's end. Needs the Locust
    (gevent) process it is made in: observers run in greenlets or hub callbacks, never threads.
    """

    def __init__(self, environment: Any, request_type: str, name: str, *, interval: float = 1.0) -> None:
        self.environment = environment
        self.request_type = request_type
        self.name = name
        self.interval = interval
        self._ms: list[float] = []
        self._second = 0
        self._first_at = 0.0
        self._last_at = 0.0
        self._timer: Any = None
        events = environment.events
        for hook in (events.test_stop, events.quitting, events.report_to_master):
            hook.add_listener(self._on_event)

    def observe(self, event: YjsEvent) -> None:
        """Observer: keep one latency event (other events are not Locust's business here)."""
        what, _kind, value = event
        if what != "latency" or value is None:
            return
        self._batch_at(time.time()).append(value * 1000.0)

    # The batch form of `observe` that LeanYjsConnection uses (see its `_Sinks`).
    def yjs_frame_hook(self, what: str, kind: str) -> None:
        """Frames are not Locust's business here: nothing to call per frame."""
        return None

    def yjs_latencies(self, samples: list[float]) -> None:
        """Keep the latencies of one read (seconds), as `observe` keeps each, with one clock read."""
        if not samples:
            return
        self._batch_at(time.time()).extend(value * 1000.0 for value in samples)

    def _batch_at(self, now: float) -> list[float]:
        """The batch (ms) a sample taken at `now` joins: a batch never spans two seconds."""
        if int(now) != self._second or not self._ms:
            if self._ms:
                self.flush()
            self._second = int(now)
            self._first_at = now
            if self._timer is None:
                self._start_timer()
        self._last_at = now
        return self._ms

    def _start_timer(self) -> None:
        import gevent  # a Locust process has it; importing it patches nothing

        self._timer = gevent.get_hub().loop.timer(self.interval, self.interval, ref=False)
        self._timer.start(self.flush)

    def _on_event(self, **_: Any) -> None:
        self.flush()

    def flush(self) -> None:
        """Add the kept samples to Locust's statistics now (a no-op when there are none)."""
        ms = self._ms
        if not ms:
            return
        self._ms = []
        from locust import stats as locust_stats  # loaded already: only ever called under Locust

        stats = self.environment.stats
        batch = locust_stats.StatsEntry(stats, self.name, self.request_type)
        batch.start_time = self._first_at
        batch.last_request_timestamp = self._last_at
        batch.num_requests = len(ms)
        batch.num_reqs_per_sec = {self._second: len(ms)}
        batch.total_response_time = sum(ms)
        batch.min_response_time = min(ms)
        batch.max_response_time = max(ms)
        batch.response_times = dict(Counter(map(locust_stats.bucket_response_time, ms)))
        stats.get(self.name, self.request_type).extend(batch)
        stats.total.extend(batch)

    def close(self) -> None:
        """Flush and stop the timer (a test that makes many environments calls this)."""
        self.flush()
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
