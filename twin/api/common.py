"""What handlers share: the context key, body parsing, auth, the CSRF check, the rate limit.

    >>> ctx = request.app[CTX]
    >>> user = await require_user(request)           # claims, or 401 AUTH_REQUIRED
    >>> await rate_limit(request, user, FILES_LIMIT) # 429 RATE_LIMIT past the window's limit
    >>> require_csrf(request)                        # 401 CSRF_MISSING / CSRF_INVALID
    >>> body = await read_json(request)              # 400 on malformed JSON, 413 if too large
    >>> return ok({"session": session}, status=201)

Handlers call these in the order CodeSync's route chains do (authenticate, rate limit,
validate, verifyCsrf, handler), so a request failing two checks gets CodeSync's answer.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from twin.api.errors import (
    AuthenticationError,
    AuthorizationError,
    CsrfError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    ValidationError,
)
from twin.auth import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE, TOKEN_COOKIE, authenticate_token, csrf_matches
from twin.context import ProcessContext

CTX = web.AppKey("ctx", ProcessContext)
# Headers a handler wants on its answer whatever it is (the X-RateLimit-* of limited routes).
EXTRA_HEADERS = "twin.extra_headers"
FILES_LIMIT = "files"
SEARCH_LIMIT = "search"


def ok(data: dict[str, Any], status: int = 200, message: str | None = None) -> web.Response:
    """The success envelope {"success": true, "data": {...}} (plus "message" where CodeSync has one)."""
    body: dict[str, Any] = {"success": True, "data": data}
    if message is not None:
        body["message"] = message
    return web.json_response(body, status=status)


def context(request: web.Request) -> ProcessContext:
    return request.app[CTX]


async def read_json(request: web.Request) -> dict[str, Any]:
    """The JSON object of the body ({} when empty); ValidationError/PayloadTooLargeError otherwise."""
    limit = context(request).config.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLargeError(f"Request body exceeds {limit} bytes")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLargeError(f"Request body exceeds {limit} bytes") from None
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("Malformed JSON in request body") from None
    if not isinstance(body, dict):
        raise ValidationError("Request body must be a JSON object")
    return body


async def optional_user(request: web.Request) -> dict[str, Any] | None:
    """The caller's claims when the `token` cookie holds a valid, not logged-out JWT."""
    if "twin.user" not in request:
        request["twin.user"] = await authenticate_token(context(request), request.cookies.get(TOKEN_COOKIE))
    return request["twin.user"]


async def require_user(request: web.Request) -> dict[str, Any]:
    user = await optional_user(request)
    if user is None:
        raise AuthenticationError("Authentication required")
    return user


def require_csrf(request: web.Request) -> None:
    """CodeSync's verifyCsrf: x-csrf-token header equal to the csrf-token cookie and to HMAC(sessionId)."""
    header = request.headers.get(CSRF_HEADER)
    if not header:
        raise CsrfError("CSRF token missing", "CSRF_MISSING")
    cookie = request.cookies.get(CSRF_COOKIE)
    session_id = request.cookies.get(SESSION_COOKIE)
    if not cookie or not session_id or cookie != header:
        raise CsrfError("Invalid CSRF token", "CSRF_INVALID")
    if not csrf_matches(context(request).config, header, session_id):
        raise CsrfError("Invalid CSRF token", "CSRF_INVALID")


async def rate_limit(request: web.Request, user: dict[str, Any], kind: str) -> None:
    """One shared window per user for files-list, content GET/PUT and search; 429 past the limit.

    Files routes allow `files_max` attempts per window, search `search_max`; rejected attempts
    are recorded too. The X-RateLimit-* headers go on the answer either way.
    """
    ctx = context(request)
    limits = ctx.config.rate_limits
    limit = limits.search_max if kind == SEARCH_LIMIT else limits.files_max
    user_id = user["userId"]
    decision = await ctx.limiter.hit(f"api:files:{user_id}", limit, limits.window_s)
    headers = decision.headers()
    request[EXTRA_HEADERS] = headers
    if not decision.allowed:
        headers["Retry-After"] = str(round(limits.window_s))
        ctx.metrics.rate_limited("API", user_id)
        raise RateLimitError("Too many requests, please try again later")


async def session_for(request: web.Request, user_id: str | None) -> dict[str, Any]:
    """The session of the URL: 404 if missing or deleted, 403 if the caller may not see it."""
    ctx = context(request)
    session_id = request.match_info["id"]
    session = await ctx.store.get_session(session_id)
    if session is None:
        raise NotFoundError("Session not found")
    if not await ctx.store.can_access_session(session_id, user_id):
        raise AuthorizationError("You do not have access to this session")
    return session
