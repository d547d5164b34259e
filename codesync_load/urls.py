"""The one check of a base URL the user typed (--api-url, --prometheus-url, ...), before any request.

    >>> require_http_url("localhost:9090", "Prometheus URL", "http://127.0.0.1:9090")
    HarnessError: Prometheus URL 'localhost:9090' is not an http(s) URL; pass e.g. http://127.0.0.1:9090

Why one function: a URL without a scheme, a host or with a port out of range otherwise fails
deep inside an HTTP library with its own words ("No host specified", "Failed to parse"); every
option that takes a base URL says the same one line instead, naming the value and an example.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from codesync_load.errors import HarnessError


def require_http_url(url: str | None, what: str, example: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
    """`url` when it is a `scheme://host[:port]` URL of one of `schemes`, else one HarnessError line."""
    kind = {("http", "https"): "an http(s)", ("ws", "wss"): "a ws://"}.get(schemes, "a " + "/".join(schemes))
    parts = urlsplit(url or "")
    if parts.scheme not in schemes or not parts.hostname:
        raise HarnessError(f"{what} {url!r} is not {kind} URL; pass e.g. {example}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 0 < port < 65536:
        raise HarnessError(f"{what} {url!r} has no valid port (1-65535); pass e.g. {example}")
    return str(url)
