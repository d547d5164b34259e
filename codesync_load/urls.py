"""The one check of a base URL the user typed (--api-url, --prometheus-url, ...), before any request.

    >>> require_http_url("localhost:9090", "Prometheus URL", "http://127.0.0.1:9090")
    HarnessError: Prometheus URL 'localhost:9090' is not an http(s) URL; pass e.g. http://127.0.0.1:9090

Why one function: a URL without a scheme, a host or with a port out of range otherwise fails
deep inside an HTTP library with its own words ("No host specified", "Failed to parse"); every
option that takes a base URL says the same one line instead, naming the value and an example.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

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


# option -> (what the message calls it, an example, the schemes it takes)
TARGET_URLS = {
    "--api-url": ("API URL", "http://127.0.0.1:4000", ("http", "https")),
    "--yjs-url": ("Yjs URL", "ws://127.0.0.1:4001", ("ws", "wss")),
    "--prometheus-url": ("Prometheus URL", "http://127.0.0.1:9090", ("http", "https")),
    "--alertmanager-url": ("Alertmanager URL", "http://127.0.0.1:9093", ("http", "https")),
}


def require_target_urls(**given: str | None) -> None:
    """Every target URL option given (api_url=..., prometheus_url=...) checked alike, before any
    probe: a malformed --prometheus-url is named as --api-url's is, not reported unreachable."""
    for key, url in given.items():
        option = "--" + key.replace("_", "-")
        if url and option in TARGET_URLS:
            what, example, schemes = TARGET_URLS[option]
            require_http_url(url, what, f"{example} ({option})", schemes=schemes)


def port_of(parts: SplitResult) -> int:
    """The TCP port a split URL connects to: its own, else its scheme's (443 for https/wss, 80).

    Raises ValueError for a port out of range, as `SplitResult.port` does."""
    return parts.port or (443 if parts.scheme in ("https", "wss") else 80)
