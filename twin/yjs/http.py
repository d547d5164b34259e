"""The plain-HTTP side of the Yjs port: `/metrics` behind METRICS_TOKEN, and a clear 426 elsewhere.

    >>> response = metrics_response(request, ctx)     # 200 exposition, 401 or 403 envelope

The token rule is the API's: unset means open; a request without an Authorization header
gets 401 AUTH_REQUIRED, a wrong bearer token 403 FORBIDDEN, both in CodeSync's JSON error
envelope, so a scraper configured for one port works for the other.
"""

from __future__ import annotations

import hmac

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from twin.context import ProcessContext


def error_envelope(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"message": message, "code": code, "statusCode": status}}, status=status)


def metrics_response(request: web.Request, ctx: ProcessContext) -> web.Response:
    """The Yjs process's registry in the Prometheus text format, if the caller may see it."""
    token = ctx.config.metrics_token
    if token:
        header = request.headers.get("Authorization")
        if not header:
            return error_envelope(401, "AUTH_REQUIRED", "Metrics endpoint requires a bearer token")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            return error_envelope(403, "FORBIDDEN", "Invalid metrics token")
    response = web.Response(body=ctx.metrics.exposition())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def upgrade_required() -> web.Response:
    """What a plain GET of a document path gets: this port speaks WebSocket only."""
    return web.Response(
        status=426,
        text="This is the Yjs WebSocket server: connect with a WebSocket client (y-websocket protocol).\n",
        headers={"Upgrade": "websocket"},
    )
