"""Test helpers for talking to a twin over HTTP: a cookie-keeping client and /metrics parsing.

    >>> api = CookieClient(twin.api_url)
    >>> api.get("/health")                          # picks up sessionId + csrf-token
    >>> api.register("a@example.com", "Passw0rd!", "Ada")
    >>> samples = scrape(twin.api_url + "/metrics")
    >>> value(samples, "codesync_http_requests_total", method="GET", route="/health", status_code="200")
    >>> delta(before, after, "codesync_errors_total", code="CSRF_MISSING")   # summed over other labels

CodeSync sets its cookies for `Domain=localhost`; a `requests` cookie jar talking to
127.0.0.1 never sends them back (see field notes), so this client parses Set-Cookie itself
and sends the Cookie header explicitly, and adds `x-csrf-token` to state-changing requests.
`scrape`, `value`, `total` and `delta` are codesync_load.exposition's (prometheus_client's own
text parser, so a format error fails the test), re-exported here for the tests' imports.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import requests

from codesync_load.exposition import Samples as Samples
from codesync_load.exposition import delta as delta
from codesync_load.exposition import scrape as scrape
from codesync_load.exposition import total as total
from codesync_load.exposition import value as value
from codesync_load.twin_process import TwinProcess, start_twin
from tests.conftest import ISOLATED_ENV as ISOLATED_ENV

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
PASSWORD = "Passw0rd-ok"


@contextlib.contextmanager
def isolated_twin(work: Path, name: str, **env: str) -> Iterator[TwinProcess]:
    """A twin for one test module, as twin_factory starts them (ISOLATED_ENV plus `env`, bcrypt
    cost 4), stopped by PID when the block ends, pass or fail.

        @pytest.fixture(scope="module")
        def api(tmp_path_factory):
            with isolated_twin(tmp_path_factory.mktemp("files"), "filestwin") as twin:
                yield twin
    """
    twin = start_twin(work, env={**ISOLATED_ENV, **env}, extra_args=["--bcrypt-rounds", "4"], name=name)
    try:
        yield twin
    finally:
        twin.stop()


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    """Poll `condition` until it returns something truthy; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def unique_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.com"


class CookieClient:
    """A CodeSync API client that keeps its own cookies (sessionId, csrf-token, token).

    Every response's Set-Cookie headers are applied regardless of their Domain; every
    request sends the kept cookies; POST/PUT/PATCH/DELETE also send `x-csrf-token` (turn
    that off with `csrf=False` to test the CSRF check).
    """

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.cookies: dict[str, str] = {}
        self.http = requests.Session()
        self.http.trust_env = False  # never route loopback through a proxy from the environment
        self.last_set_cookies: list[SimpleCookie] = []

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> CookieClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def csrf(self) -> str | None:
        return self.cookies.get("csrf-token")

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        csrf: bool = True,
    ) -> requests.Response:
        """Send with the kept cookies; remember the cookies the answer sets."""
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if csrf and method.upper() in STATE_CHANGING and self.csrf:
            sent.setdefault("x-csrf-token", self.csrf)
        response = self.http.request(
            method, self.base_url + path, json=json, data=data, headers=sent, timeout=self.timeout
        )
        self._keep_cookies(response)
        return response

    def _keep_cookies(self, response: requests.Response) -> None:
        self.last_set_cookies = []
        for raw in response.raw.headers.getlist("Set-Cookie"):
            jar = SimpleCookie()
            jar.load(raw)
            self.last_set_cookies.append(jar)
            for name, morsel in jar.items():
                expired = morsel["max-age"] == "0" or (morsel["expires"] and "1970" in morsel["expires"])
                if expired or morsel.value == "":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> requests.Response:
        return self.request("POST", path, json=json, **kw)

    def put(self, path: str, json: Any = None, **kw: Any) -> requests.Response:
        return self.request("PUT", path, json=json, **kw)

    def patch(self, path: str, json: Any = None, **kw: Any) -> requests.Response:
        return self.request("PATCH", path, json=json, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.request("DELETE", path, **kw)

    # -- the common flows -----------------------------------------------------------------
    def register(self, email: str | None = None, password: str = PASSWORD, name: str = "Test User") -> dict:
        """GET /health for the CSRF cookies if needed, then register; returns the user."""
        if not self.csrf:
            self.get("/health")
        response = self.post(
            "/api/auth/register", {"email": email or unique_email(), "password": password, "name": name}
        )
        assert response.status_code == 201, response.text
        return response.json()["data"]["user"]

    def login(self, email: str, password: str = PASSWORD) -> dict:
        if not self.csrf:
            self.get("/health")
        response = self.post("/api/auth/login", {"email": email, "password": password})
        assert response.status_code == 200, response.text
        return response.json()["data"]["user"]

    def create_session(self, name: str = "Load session", language: str = "python", visibility: str = "PUBLIC") -> dict:
        response = self.post("/api/sessions", {"name": name, "language": language, "visibility": visibility})
        assert response.status_code == 201, response.text
        return response.json()["data"]["session"]
