"""The HTTP transport the REST client talks through, and a plain keep-alive implementation.

    >>> transport = Urllib3Transport(timeout=10.0)
    >>> response = transport.request("GET", "http://127.0.0.1:4000/health", {}, None)
    >>> response.status, response.header("x-csrf-token"), response.elapsed

The REST client only needs `request(method, url, headers, body) -> Response`, so the same
client runs over urllib3 in tests and benchmarks and over Locust's FastHttpSession under
gevent (see `locust_transport`). A transport never follows redirects, never retries and
never keeps cookies: the REST client does that itself, because CodeSync issues its cookies
for `Domain=localhost` and a normal cookie jar talking to 127.0.0.1 silently drops them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol


class TransportError(Exception):
    """The request never produced an HTTP response (refused, reset, timed out)."""


@dataclass(frozen=True)
class Response:
    """One HTTP response; `headers` keeps every (name, value) pair, duplicates included.

    Duplicates matter: a response that sets three cookies carries three `Set-Cookie` headers.
    `elapsed` is in seconds, measured by the transport around the whole exchange.
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    elapsed: float
    _lower: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, value in self.headers:
            self._lower.setdefault(name.lower(), value)

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of header `name` (case-insensitive)."""
        return self._lower.get(name.lower(), default)

    def header_values(self, name: str) -> list[str]:
        """Every value of header `name`, in the order received."""
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]


class Transport(Protocol):
    """What the REST client needs from HTTP: one request in, one `Response` out.

    Raises TransportError when no HTTP response arrived.
    """

    def request(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> Response: ...

    def close(self) -> None: ...


def header_pairs(items: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Normalise a transport library's header items to a tuple of str pairs."""
    return tuple((str(name), str(value)) for name, value in items)


class Urllib3Transport:
    """Plain blocking HTTP with keep-alive connection pools (urllib3), for use outside Locust.

    One instance may serve many clients; urllib3's pools are thread-safe. Proxies from the
    environment are ignored on purpose: a load generator must talk to the target directly.
    """

    def __init__(self, *, timeout: float = 30.0, maxsize: int = 10) -> None:
        import urllib3

        self._urllib3 = urllib3
        self._pool = urllib3.PoolManager(
            maxsize=maxsize,
            block=False,
            retries=False,
            timeout=urllib3.Timeout(total=timeout),
        )

    def request(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> Response:
        started = time.perf_counter()
        try:
            raw = self._pool.request(
                method,
                url,
                body=body,
                headers=dict(headers),
                redirect=False,
                retries=False,
                preload_content=True,
                decode_content=True,
            )
        except self._urllib3.exceptions.HTTPError as err:
            raise TransportError(f"{method} {url}: {err}") from err
        elapsed = time.perf_counter() - started
        return Response(
            status=raw.status,
            headers=header_pairs(raw.headers.iteritems()),
            body=raw.data or b"",
            elapsed=elapsed,
        )

    def close(self) -> None:
        self._pool.clear()
