"""CodeSync's authentication pieces: CSRF cookies, JWT cookies, bcrypt, token checks.

    >>> session_id = new_session_id()
    >>> csrf_token(config, session_id)                  # HMAC-SHA256(csrf_secret, sessionId), hex
    >>> token, claims = issue_jwt(config, user)         # HS256, 7 days, {userId, email, role, jti}
    >>> await authenticate_token(ctx, token)            # claims, or None if invalid/blacklisted
    >>> await hash_password(config, "Passw0rd")         # bcrypt at config.bcrypt_rounds, off-loop

The API middleware and the Socket.IO server share these, so both accept exactly the same
tokens. bcrypt runs in the default thread executor: at cost 12 one hash takes ~0.2 s of
CPU, which must not stall every other connection of the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from typing import TYPE_CHECKING, Any

import bcrypt
import jwt

from twin.config import TwinConfig

if TYPE_CHECKING:
    from aiohttp import web

    from twin.context import ProcessContext

TOKEN_COOKIE = "token"
SESSION_COOKIE = "sessionId"
CSRF_COOKIE = "csrf-token"
CSRF_HEADER = "x-csrf-token"
COOKIE_DOMAIN = "localhost"
TOKEN_TTL_S = 7 * 24 * 3600
COOKIE_MAX_AGE_S = 7 * 24 * 3600
JWT_ALGORITHM = "HS256"
_SESSION_ID_RE = re.compile(r"^[0-9a-f]{64}$")


# -- CSRF ---------------------------------------------------------------------------------
def new_session_id() -> str:
    """32 random bytes as hex, CodeSync's anonymous `sessionId` cookie."""
    return secrets.token_hex(32)


def valid_session_id(value: str | None) -> bool:
    return bool(value) and _SESSION_ID_RE.match(value or "") is not None


def csrf_token(config: TwinConfig, session_id: str) -> str:
    return hmac.new(config.csrf_secret.encode(), session_id.encode(), hashlib.sha256).hexdigest()


def csrf_matches(config: TwinConfig, token: str, session_id: str) -> bool:
    return hmac.compare_digest(token.encode(), csrf_token(config, session_id).encode())


def set_cookie(response: web.StreamResponse, name: str, value: str, *, httponly: bool, max_age: int) -> None:
    """Set a cookie the way CodeSync does: Domain=localhost, Path=/, SameSite=Strict."""
    response.set_cookie(
        name, value, domain=COOKIE_DOMAIN, path="/", httponly=httponly, samesite="Strict", max_age=max_age
    )


# -- JWT ----------------------------------------------------------------------------------
def issue_jwt(config: TwinConfig, user: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A 7-day HS256 token for `user` (keys id, email, role) and its claims."""
    now = int(time.time())
    claims = {
        "userId": user["id"],
        "email": user["email"],
        "role": user.get("role", "USER"),
        "jti": secrets.token_hex(16),
        "iat": now,
        "exp": now + TOKEN_TTL_S,
    }
    return jwt.encode(claims, config.jwt_secret, algorithm=JWT_ALGORITHM), claims


def verify_jwt(config: TwinConfig, token: str) -> dict[str, Any] | None:
    """The claims of a well-signed, unexpired token carrying userId; None otherwise."""
    try:
        claims = jwt.decode(token, config.jwt_secret, algorithms=[JWT_ALGORITHM], options={"require": ["exp"]})
    except jwt.PyJWTError:
        return None
    if not isinstance(claims.get("userId"), str):
        return None
    return claims


async def authenticate_token(ctx: ProcessContext, token: str | None) -> dict[str, Any] | None:
    """The claims {userId, email, role, jti, iat, exp} of a valid token that was not logged out."""
    if not token:
        return None
    claims = verify_jwt(ctx.config, token)
    if claims is None:
        return None
    jti = claims.get("jti")
    if jti and await ctx.store.is_token_blacklisted(jti):
        return None
    return claims


# -- passwords ----------------------------------------------------------------------------
def _secret(password: str) -> bytes:
    """The bytes bcrypt hashes: Node's bcrypt silently uses the first 72; Python's raises past them."""
    return password.encode()[:72]


async def hash_password(config: TwinConfig, password: str) -> str:
    """bcrypt at `config.bcrypt_rounds` ($2b$), computed off the event loop."""

    def work() -> str:
        return bcrypt.hashpw(_secret(password), bcrypt.gensalt(rounds=config.bcrypt_rounds)).decode()

    return await asyncio.get_running_loop().run_in_executor(None, work)


async def check_password(password: str, password_hash: str) -> bool:
    def work() -> bool:
        try:
            return bcrypt.checkpw(_secret(password), password_hash.encode())
        except ValueError:
            return False

    return await asyncio.get_running_loop().run_in_executor(None, work)
