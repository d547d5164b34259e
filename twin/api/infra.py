"""GET /health and GET /metrics.

    >>> GET /health   -> {"status": "ok", "timestamp", "uptime", "environment"}
    >>> GET /metrics  -> Prometheus text; with METRICS_TOKEN: no header 401, wrong bearer 403

/health never touches the database, like CodeSync's (fault `health-ignores-db`, on by default):
with PostgreSQL stopped it still answers 200 while every user request fails. `--health-checks-db`
runs the fixed version: one `SELECT 1`, and 503 {"status": "error"} when it fails.
"""

from __future__ import annotations

import hmac
import os
import time
from datetime import UTC, datetime

from aiohttp import web

from twin.api.common import context
from twin.api.errors import AuthenticationError, AuthorizationError

_STARTED = time.monotonic()
# prom-client's register.contentType; prometheus_client's CONTENT_TYPE_LATEST moved on to 1.0.0.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


async def health(request: web.Request) -> web.Response:
    ctx = context(request)
    if ctx.config.health_checks_db:
        try:
            await ctx.store.ping()
        except Exception as err:  # any failure of the database is "not healthy", never a 500 page
            reason = " ".join(str(err).split())[:200] or type(err).__name__
            return web.json_response({"status": "error", "database": reason}, status=503)
    now = datetime.now(UTC)
    return web.json_response(
        {
            "status": "ok",
            "timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
            "uptime": time.monotonic() - _STARTED,
            "environment": os.environ.get("NODE_ENV", "development"),
        }
    )


def check_metrics_token(request: web.Request, token: str | None) -> None:
    """CodeSync's metricsAuth: nothing to check without a token; else Bearer must match."""
    if not token:
        return
    header = request.headers.get("Authorization", "")
    if not header:
        raise AuthenticationError("Metrics authentication required")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise AuthorizationError("Invalid metrics token")


async def metrics(request: web.Request) -> web.Response:
    ctx = context(request)
    check_metrics_token(request, ctx.config.metrics_token)
    return web.Response(body=ctx.metrics.exposition(), headers={"Content-Type": METRICS_CONTENT_TYPE})
