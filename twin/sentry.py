"""Sentry reporting through the real sentry-sdk, on only when SENTRY_DSN is set.

>>> init_sentry(config)                          # no-op without a DSN
>>> capture_error(exc, request=req, route=r)     # what the error handler calls for 5xx answers

An HTTP error event carries what CodeSync's Express error handler sends: the transaction
"METHOD /route/:template" and the request (method, URL, headers), with the `authorization`,
`cookie` and `set-cookie` headers left out as the SDKs do without sendDefaultPii. The release
is SENTRY_RELEASE (the stack sets codesync-twin@<version>), else what sentry-sdk detects (the
git commit of the working directory).

The `errors-unreported` fault answers 5xx as usual but skips reporting every PARAMth one.
"""

from __future__ import annotations

import threading
from typing import Any

from codesync_load.errors import HarnessError
from twin.config import TwinConfig

_enabled = False
# Every Nth capture is dropped by the errors-unreported fault (0: the fault is off).
_drop_every = 0
_captured = 0
_lock = threading.Lock()
# Headers an SDK without sendDefaultPii never sends (credentials and cookies).
SENSITIVE_HEADERS = frozenset({"authorization", "cookie", "set-cookie"})
# The twin keeps every event (the SDK's default queue holds 100): a missing event then means a
# fault or the tracker, not a burst the twin produced faster than one sender thread drains it.
_QUEUE_SIZE = 100_000


def init_sentry(config: TwinConfig) -> None:
    global _enabled, _drop_every
    if not config.sentry_dsn:
        return
    import os

    import sentry_sdk
    from sentry_sdk.utils import BadDsn

    try:
        sentry_sdk.init(
            dsn=config.sentry_dsn,
            traces_sample_rate=0.0,
            default_integrations=False,
            transport_queue_size=_QUEUE_SIZE,
            # The deployment's release; None lets the SDK detect one (git), as CodeSync's SDK does.
            release=os.environ.get("SENTRY_RELEASE") or None,
        )
    except BadDsn as err:
        raise HarnessError(f"SENTRY_DSN is not a valid DSN ({err}); fix it or unset SENTRY_DSN") from None
    if config.faults.active("errors-unreported"):
        _drop_every = max(1, round(config.faults.param("errors-unreported")))
    _enabled = True


def _dropped_by_fault() -> bool:
    global _captured
    if not _drop_every:
        return False
    with _lock:
        _captured += 1
        return _captured % _drop_every == 0


def request_data(request: Any) -> dict[str, Any]:
    """The event's `request` interface from an aiohttp request, sensitive headers left out."""
    headers = {k: v for k, v in request.headers.items() if k.lower() not in SENSITIVE_HEADERS}
    return {"method": request.method, "url": str(request.url.with_query(None)), "headers": headers}


def capture_error(error: BaseException, request: Any = None, route: str | None = None) -> None:
    """Report one server error (with its request and route when it answered an HTTP request)."""
    if not _enabled or _dropped_by_fault():
        return
    import sentry_sdk

    if request is None:
        sentry_sdk.capture_exception(error)
        return
    data = request_data(request)
    with sentry_sdk.new_scope() as scope:
        if route:
            scope.set_transaction_name(f"{request.method} {route}")
            scope.set_tag("route", route)

        def add_request(event: dict[str, Any], _hint: dict[str, Any]) -> dict[str, Any]:
            event["request"] = data
            return event

        scope.add_event_processor(add_request)
        sentry_sdk.capture_exception(error)
