"""The one place the clients report to Locust: `environment.events.request`.

    >>> report(environment, "YJS", "connect+sync", 1.7, exception=None)
    >>> api = RestClient(host, LocustHttpTransport(), observers=(rest_observer(environment),))
    >>> yjs = YjsClient(url, doc, observers=(yjs_observer(environment),))
    >>> with timed(environment, "SIO", "chat round trip"):
    ...     sio.chat(session_id)

Nothing here imports Locust: the environment is used by its `events.request.fire`, so this
module imports (and tests) without gevent's patching; the clients never import it at all.
Response times are float milliseconds with sub-millisecond precision kept: Locust rounds its
own percentiles, and the raw samples belong in the ledger anyway.
"""

from __future__ import annotations

import contextlib
import time
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
    """An observer for YjsClient that reports each propagation latency sample as a YJS request."""

    def observe(event: YjsEvent) -> None:
        if event.what == "latency" and event.value is not None:
            report(environment, "YJS", name, event.value * 1000.0)

    return observe
