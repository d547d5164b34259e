"""Build the API process's aiohttp application: routes, middleware chain, start-up hook.

    >>> app = build_api_app(ctx)
    >>> attach_socketio(app, ctx)        # the Socket.IO server adds /socket.io/ itself

Routes are declared once with their Express templates (`/api/sessions/:id`); the metrics
middleware labels requests with exactly these templates. On start-up the
`codesync_sessions_active` gauge is set to the number of non-deleted sessions in storage,
so a twin restarted on the same database reports what it holds (one metered count query).
"""

from __future__ import annotations

import random
import re

from aiohttp import web

from twin.api import auth_routes, files, infra, invitations, sessions
from twin.api.common import CTX
from twin.api.middleware import (
    ERROR_BURST_RNG,
    ERROR_BURST_SEED,
    csrf_cookie_middleware,
    error_middleware,
    metrics_middleware,
)
from twin.context import ProcessContext
from twin.metrics import SESSIONS_ACTIVE

# (method, Express template, handler); `:path` matches raw slashes as well as %2F.
ROUTES = (
    ("GET", "/health", infra.health),
    ("GET", "/metrics", infra.metrics),
    ("POST", "/api/auth/register", auth_routes.register),
    ("POST", "/api/auth/login", auth_routes.login),
    ("GET", "/api/auth/me", auth_routes.me),
    ("POST", "/api/auth/logout", auth_routes.logout),
    ("POST", "/api/sessions", sessions.create_session),
    ("GET", "/api/sessions", sessions.list_sessions),
    ("GET", "/api/sessions/:id", sessions.get_session),
    ("PATCH", "/api/sessions/:id", sessions.update_session),
    ("DELETE", "/api/sessions/:id", sessions.delete_session),
    ("POST", "/api/sessions/:id/participants", sessions.add_participant),
    ("GET", "/api/sessions/:id/files", files.list_files),
    ("POST", "/api/sessions/:id/files", files.create_file),
    ("GET", "/api/sessions/:id/files/:path/content", files.get_content),
    ("PUT", "/api/sessions/:id/files/:path/content", files.put_content),
    ("POST", "/api/sessions/:id/search", files.search),
    ("POST", "/api/invitations", invitations.create_invitation),
    ("GET", "/api/invitations/verify/:token", invitations.verify_invitation),
    ("GET", "/api/invitations/session/:id", invitations.list_invitations),
    ("POST", "/api/invitations/accept/:token", invitations.accept_invitation),
    ("DELETE", "/api/invitations/:id", invitations.revoke_invitation),
)


def aiohttp_path(template: str) -> str:
    """`/api/sessions/:id/files/:path/content` -> `/api/sessions/{id}/files/{path:.+}/content`."""
    return re.sub(r":(\w+)", lambda m: "{path:.+}" if m.group(1) == "path" else "{" + m.group(1) + "}", template)


async def _init_sessions_gauge(app: web.Application) -> None:
    ctx = app[CTX]
    if ctx.config.faults.active("sessions-gauge-reset"):
        return  # the fault: the gauge starts at 0 whatever storage holds
    ctx.metrics.family(SESSIONS_ACTIVE).set(await ctx.store.count_active_sessions())


def build_api_app(ctx: ProcessContext) -> web.Application:
    chain = [metrics_middleware, csrf_cookie_middleware, error_middleware]
    if ctx.config.service_model is not None:  # off by default (twin/service_model.py)
        from twin.service_model import service_model_middleware

        chain.append(service_model_middleware(ctx.config.service_model))
    app = web.Application(
        middlewares=chain,
        client_max_size=ctx.config.max_body_bytes,
    )
    app[CTX] = ctx
    app[ERROR_BURST_RNG] = random.Random(ERROR_BURST_SEED)
    for method, template, handler in ROUTES:
        if method == "GET":  # Express answers HEAD for every GET route; so does the twin
            app.router.add_get(aiohttp_path(template), handler)
        else:
            app.router.add_route(method, aiohttp_path(template), handler)
    app.on_startup.append(_init_sessions_gauge)
    return app
