"""The API's middleware chain, outermost first: metrics, CSRF cookies, error handling.

    >>> web.Application(middlewares=[metrics_middleware, csrf_cookie_middleware, error_middleware])

- `metrics_middleware` records every HTTP response (errors and 404s included) with the
  Express-style route template, e.g. `/api/sessions/:id/files/:path/content`; a request no
  route matched is recorded with route="unmatched". GET /metrics and /socket.io are not
  recorded (CodeSync's middleware skips them too).
- `csrf_cookie_middleware` is CodeSync's setCsrfToken: a request without a valid `sessionId`
  cookie gets a new one; every answer carries the `csrf-token` cookie and `X-CSRF-Token` header.
- `error_middleware` is the one error handler: it turns every failure (ours, aiohttp's
  404/405/413, timeouts, crashes) into the error envelope, counts it in
  `codesync_errors_total{type,code}`, reports 5xx to Sentry, enforces the request timeout
  and injects the `error-burst` fault.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from twin.api.common import CTX, EXTRA_HEADERS
from twin.api.errors import (
    ApiError,
    InternalError,
    NotFoundError,
    PayloadTooLargeError,
    RequestTimeoutError,
    error_response,
)
from twin.auth import (
    COOKIE_MAX_AGE_S,
    CSRF_COOKIE,
    SESSION_COOKIE,
    csrf_token,
    new_session_id,
    set_cookie,
    valid_session_id,
)
from twin.sentry import capture_error

log = logging.getLogger("twin.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UNMATCHED_ROUTE = "unmatched"
# The error-burst fault's random stream: fixed, so a run with the same traffic fails the same requests.
ERROR_BURST_SEED = 20251127
ERROR_BURST_RNG = web.AppKey("error_burst_rng", random.Random)
_PLACEHOLDER = re.compile(r"\{(\w+)[^}]*\}")


def _passthrough(request: web.Request) -> bool:
    """Socket.IO traffic belongs to the Socket.IO server: no metrics, cookies or timeouts here."""
    return request.path.startswith("/socket.io")


def route_template(request: web.Request) -> str:
    """`/api/sessions/{id}` -> `/api/sessions/:id`; "unmatched" when no route matched."""
    match_info = request.match_info
    if match_info.http_exception is not None or match_info.route.resource is None:
        return UNMATCHED_ROUTE
    return _PLACEHOLDER.sub(r":\1", match_info.route.resource.canonical)


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if _passthrough(request) or (request.method == "GET" and request.path == "/metrics"):
        return await handler(request)
    started = time.perf_counter()
    # A request the client abandons raises CancelledError here and is not recorded: Express
    # records on the response's `finish`, which an aborted request never reaches.
    response = await handler(request)
    request.app[CTX].metrics.http_response(
        request.method, route_template(request), response.status, time.perf_counter() - started, raw_path=request.path
    )
    return response


@web.middleware
async def csrf_cookie_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if _passthrough(request):
        return await handler(request)
    session_id = request.cookies.get(SESSION_COOKIE)
    fresh = not valid_session_id(session_id)
    if fresh:
        session_id = new_session_id()
    response = await handler(request)
    if response.prepared:  # a streamed answer already sent its headers
        return response
    assert session_id is not None
    token = csrf_token(request.app[CTX].config, session_id)
    if fresh:
        set_cookie(response, SESSION_COOKIE, session_id, httponly=True, max_age=COOKIE_MAX_AGE_S)
    set_cookie(response, CSRF_COOKIE, token, httponly=False, max_age=COOKIE_MAX_AGE_S)
    response.headers["X-CSRF-Token"] = token
    return response


def _from_http_exception(exc: web.HTTPException) -> ApiError:
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return PayloadTooLargeError("Request body too large")
    if exc.status in (404, 405):  # Express has no 405: an unknown method is an unknown route
        return NotFoundError("Route not found")
    error = ApiError(exc.reason or "Request failed", code="HTTP_ERROR")
    error.status = exc.status
    error.type_name = type(exc).__name__
    return error


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if _passthrough(request):
        return await handler(request)
    ctx = request.app[CTX]
    error: ApiError | None = None
    cause: BaseException | None = None
    try:
        faults = ctx.config.faults
        if (
            faults.active("error-burst")
            and request.path.startswith("/api")
            and request.app[ERROR_BURST_RNG].random() < faults.param("error-burst")
        ):
            raise InternalError("Internal server error (injected by the error-burst fault)")
        async with asyncio.timeout(ctx.config.request_timeout_s):
            response = await handler(request)
    except ApiError as err:
        error = err
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error = _from_http_exception(exc)
    except TimeoutError:
        error = RequestTimeoutError("Request timeout")
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("unhandled error on %s %s", request.method, request.path)
        error, cause = InternalError("Internal server error"), exc
    if error is not None:
        ctx.metrics.error_answered(error.type_name, error.code)
        if error.status >= 500:
            capture_error(cause or error, request=request, route=route_template(request))
        response = error_response(error)
    extra = request.get(EXTRA_HEADERS)
    if extra and not response.prepared:
        response.headers.update(extra)
    return response
