"""POST /api/auth/register|login|logout and GET /api/auth/me.

    >>> POST /api/auth/register {email, password, name}  -> 201 {user}, cookie token
    >>> POST /api/auth/login {email, password}            -> 200 {user}, cookie token
    >>> GET /api/auth/me                                  -> 200 {user}
    >>> POST /api/auth/logout                             -> 200, token blacklisted, cookie cleared

Register and login need the CSRF header like every state-changing /api route (CodeSync's
routes chain validate -> verifyCsrf), so a client fetches its tokens first, e.g. GET /health.
The JWT only ever travels in the `token` cookie, never in a body.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from twin.api import validation
from twin.api.common import context, ok, read_json, require_csrf, require_user
from twin.api.errors import AuthenticationError, ConflictError
from twin.auth import (
    COOKIE_DOMAIN,
    COOKIE_MAX_AGE_S,
    TOKEN_COOKIE,
    check_password,
    hash_password,
    issue_jwt,
    set_cookie,
)
from twin.storage import StoreConflict

BAD_CREDENTIALS = "Invalid email or password"


def _with_token(response: web.Response, token: str) -> web.Response:
    set_cookie(response, TOKEN_COOKIE, token, httponly=True, max_age=COOKIE_MAX_AGE_S)
    return response


async def register(request: web.Request) -> web.Response:
    body = validation.register_body(await read_json(request))
    require_csrf(request)
    ctx = context(request)
    if await ctx.store.email_exists(body["email"]):
        raise ConflictError("User with this email already exists")
    password_hash = await hash_password(ctx.config, body["password"])
    try:
        user = await ctx.store.create_user(body["email"], body["name"], password_hash)
    except StoreConflict:  # registered concurrently between the check and the insert
        raise ConflictError("User with this email already exists") from None
    token, _ = issue_jwt(ctx.config, user)
    return _with_token(ok({"user": user}, status=201), token)


async def login(request: web.Request) -> web.Response:
    body = validation.login_body(await read_json(request))
    require_csrf(request)
    ctx = context(request)
    record = await ctx.store.get_user_credentials(body["email"])
    if record is None or not await check_password(body["password"], record.pop("passwordHash")):
        raise AuthenticationError(BAD_CREDENTIALS)
    token, _ = issue_jwt(ctx.config, record)
    return _with_token(ok({"user": record}), token)


async def me(request: web.Request) -> web.Response:
    claims = await require_user(request)
    user = await context(request).store.get_user(claims["userId"])
    if user is None:
        raise AuthenticationError("User no longer exists")
    return ok({"user": user})


async def logout(request: web.Request) -> web.Response:
    claims = await require_user(request)
    require_csrf(request)
    expires = datetime.fromtimestamp(int(claims["exp"]), UTC).isoformat()
    await context(request).store.blacklist_token(claims.get("jti") or "", claims["userId"], expires)
    response = ok({}, message="Logged out successfully")
    response.del_cookie(TOKEN_COOKIE, domain=COOKIE_DOMAIN, path="/")
    return response
