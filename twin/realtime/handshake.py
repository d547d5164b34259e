"""Find the JWT a Socket.IO client presented, the two ways CodeSync's clients present it.

    >>> token_from_handshake({"token": "eyJ..."}, environ)      # python-socketio, Node client
    'eyJ...'
    >>> token_from_handshake(None, {"HTTP_COOKIE": "token=eyJ...; csrf-token=x"})  # a browser
    'eyJ...'

The `auth` object of the CONNECT packet wins; a browser that logged in over REST carries
the `token` cookie instead, so the handshake's Cookie header is the fallback. Anything that
is not a non-empty string is "no token": the caller refuses the connection.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# A JWT of CodeSync's shape is a few hundred characters; anything far longer is not one,
# and refusing it before decoding keeps a hostile handshake cheap.
MAX_TOKEN_CHARS = 8192


def token_from_handshake(auth: Any, environ: Mapping[str, Any]) -> str | None:
    """The token from `auth["token"]`, else from the `token` cookie, else None."""
    if isinstance(auth, Mapping):
        token = auth.get("token")
        if isinstance(token, str) and 0 < len(token) <= MAX_TOKEN_CHARS:
            return token
    return _token_cookie(environ.get("HTTP_COOKIE"))


def _token_cookie(header: Any) -> str | None:
    """The `token` value of a Cookie header (`a=1; token=...; b=2`), parsed by hand.

    http.cookies.SimpleCookie stops at the first cookie it dislikes, which would make a
    browser's unrelated cookie decide whether its login counts.
    """
    if not isinstance(header, str):
        return None
    for pair in header.split(";"):
        name, sep, value = pair.strip().partition("=")
        if sep and name.strip() == "token":
            value = value.strip().strip('"')
            if 0 < len(value) <= MAX_TOKEN_CHARS:
                return value
            return None
    return None
