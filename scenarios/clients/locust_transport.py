"""The REST client's transport under Locust: FastHttpSession's gevent HTTP client, silenced.

    >>> transport = LocustHttpTransport()                      # inside a Locust process only
    >>> api = RestClient(host, transport, observers=(rest_observer(environment),))

FastHttpSession fires Locust's `request` event for every request it sends, named by URL. Here
the session gets a private event hook that nobody listens to, and the REST client reports
each call once, named by its route template, through `locust_events` (the single place the
clients report to Locust). Pass `session=` to reuse a session of your own instead; its own
events then fire as well.

Locust is imported when the transport is constructed, never at module import, so plain users
of `scenarios.clients` never import it (importing Locust monkey-patches the process).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from scenarios.clients.transport import Response, TransportError, header_pairs


class LocustHttpTransport:
    """`Transport` over locust.contrib.fasthttp.FastHttpSession (geventhttpclient, keep-alive)."""

    def __init__(self, *, session: Any = None, timeout: float = 30.0, concurrency: int = 10) -> None:
        if session is None:
            from locust.contrib.fasthttp import FastHttpSession
            from locust.event import EventHook

            session = FastHttpSession(
                base_url=None,
                request_event=EventHook(),
                user=None,
                connection_timeout=timeout,
                network_timeout=timeout,
                concurrency=concurrency,
            )
        self.session = session

    def request(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> Response:
        started = time.perf_counter()
        raw = self.session.request(method, url, data=body, headers=dict(headers), allow_redirects=False)
        elapsed = time.perf_counter() - started
        error = getattr(raw, "error", None)
        status = getattr(raw, "status_code", 0) or 0
        if status == 0 or raw.headers is None:
            raise TransportError(f"{method} {url}: {error or 'no response'}")
        pairs: list[tuple[str, str]] = []
        for name in {key.lower() for key in raw.headers}:
            pairs.extend((name, value) for value in raw.headers.get_all(name) or [])
        return Response(status=status, headers=header_pairs(pairs), body=raw.content or b"", elapsed=elapsed)

    def close(self) -> None:
        client = getattr(self.session, "client", None)
        close = getattr(client, "close", None)
        if callable(close):
            close()
