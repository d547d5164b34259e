"""The CodeSync REST client: cookies and CSRF kept by hand, envelopes and rate limits parsed.

    >>> api = RestClient("http://127.0.0.1:4000")
    >>> api.register("ada@example.test", "Secret123", "Ada").raise_for_error()
    >>> session = api.create_session("load run").raise_for_error().data
    >>> result = api.put_file_content(session["id"], "src/main.py", "print(1)")
    >>> result.route, result.status, result.elapsed, result.error_code
    ('/api/sessions/:id/files/:path/content', 200, 0.004, None)

Why by hand: CodeSync sets `sessionId`, `csrf-token` and `token` with `Domain=localhost`, so a
cookie jar talking to 127.0.0.1 drops them; this client keeps them itself and sends
`Cookie: sessionId=..; csrf-token=..; token=..`, plus `x-csrf-token` on every state-changing
call; when no CSRF pair is held yet, a state-changing call fetches `GET /health` first.

Every call returns an `ApiResult` carrying the route TEMPLATE next to the concrete path, the
status, the elapsed time, the envelope's error (code, statusCode, message) and the rate-limit
headers, so that a ledger can count requests by (method, route, status) and Locust can name
requests by template. Errors are returned, not raised: a 429 under load is data. Call
`raise_for_error()` where an error means the scenario cannot go on. Observers registered
with `observe()` see every result, including transport failures (status 0).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

from codesync_load import __version__
from codesync_load.errors import TargetHttpError
from scenarios.clients.transport import Response, Transport, TransportError, Urllib3Transport

# Every request names the harness: a tracker that also gets other clients' errors (a shared
# staging CodeSync) can then tell this run's 5xx from theirs (verify/checks/errors_tracked.py).
USER_AGENT_PRODUCT = "codesync-load"
USER_AGENT = f"{USER_AGENT_PRODUCT}/{__version__}"

# Route templates as the backend names them in codesync_http_requests_total{route=...}.
HEALTH = "/health"
AUTH_REGISTER = "/api/auth/register"
AUTH_LOGIN = "/api/auth/login"
AUTH_ME = "/api/auth/me"
AUTH_LOGOUT = "/api/auth/logout"
SESSIONS = "/api/sessions"
SESSION = "/api/sessions/:id"
PARTICIPANTS = "/api/sessions/:id/participants"
FILES = "/api/sessions/:id/files"
FILE_CONTENT = "/api/sessions/:id/files/:path/content"
SEARCH = "/api/sessions/:id/search"
INVITATIONS = "/api/invitations"
INVITATION_VERIFY = "/api/invitations/verify/:token"
INVITATION_ACCEPT = "/api/invitations/accept/:token"
SESSION_INVITATIONS = "/api/invitations/session/:id"
INVITATION = "/api/invitations/:id"

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
COOKIE_ORDER = ("sessionId", "csrf-token", "token")


@dataclass(frozen=True)
class ApiErrorInfo:
    """The error envelope `{"error": {"message", "code", "statusCode"}}`."""

    code: str
    status_code: int
    message: str


@dataclass(frozen=True)
class RateLimitInfo:
    """X-RateLimit-Limit/Remaining/Reset and Retry-After as sent (numbers where numeric).

    `reset_raw` keeps the header text because deployments differ in its unit.
    """

    limit: int | None
    remaining: int | None
    reset: float | None
    reset_raw: str | None
    retry_after: float | None


@dataclass(frozen=True)
class ApiResult:
    """One REST call as the ledger and Locust need it."""

    method: str
    route: str
    path: str
    status: int
    elapsed: float
    body: bytes
    payload: Any
    error: ApiErrorInfo | None
    rate_limit: RateLimitInfo | None
    transport_error: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error_code(self) -> str | None:
        """The envelope's code (e.g. RATE_LIMIT), "TRANSPORT" when no response came."""
        if self.transport_error is not None:
            return "TRANSPORT"
        return self.error.code if self.error else None

    @property
    def data(self) -> Any:
        """`data` of a success envelope, else the whole JSON body (None when not JSON)."""
        if isinstance(self.payload, dict) and "data" in self.payload:
            return self.payload["data"]
        return self.payload

    def raise_for_error(self) -> ApiResult:
        """Return self when 2xx, else raise ApiError naming the call and the server's reason."""
        if not self.ok:
            raise ApiError(self)
        return self


class ApiError(TargetHttpError):
    """A REST call that did not succeed; `.result` holds everything that was received."""

    def __init__(self, result: ApiResult) -> None:
        self.result = result
        self.code = result.error_code or f"HTTP_{result.status}"
        self.status = result.status
        if result.transport_error is not None:
            reason = result.transport_error
        elif result.error is not None:
            reason = f"{result.status} {result.error.code}: {result.error.message}"
        else:
            reason = f"{result.status} without an error envelope: {result.body[:120]!r}"
        super().__init__(f"{result.method} {result.route} ({result.path}) failed: {reason}")


def parse_error_envelope(payload: Any, status: int) -> ApiErrorInfo | None:
    """The error envelope, or a synthetic one for non-2xx bodies that lack it."""
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        err = payload["error"]
        try:
            status_code = int(err.get("statusCode", status))
        except (TypeError, ValueError):
            status_code = status
        return ApiErrorInfo(
            code=str(err.get("code", f"HTTP_{status}")),
            status_code=status_code,
            message=str(err.get("message", "")),
        )
    if status >= 400:
        return ApiErrorInfo(code=f"HTTP_{status}", status_code=status, message="response carries no error envelope")
    return None


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text.strip())
    except ValueError:
        return None


def parse_rate_limit(response: Response) -> RateLimitInfo | None:
    """The rate-limit headers of a response, or None when it carries none of them."""
    limit = response.header("x-ratelimit-limit")
    remaining = response.header("x-ratelimit-remaining")
    reset = response.header("x-ratelimit-reset")
    retry = response.header("retry-after")
    if limit is None and remaining is None and reset is None and retry is None:
        return None
    limit_n, remaining_n = _number(limit), _number(remaining)
    return RateLimitInfo(
        limit=int(limit_n) if limit_n is not None else None,
        remaining=int(remaining_n) if remaining_n is not None else None,
        reset=_number(reset),
        reset_raw=reset,
        retry_after=_number(retry),
    )


def parse_set_cookie(header: str) -> tuple[str, str, bool]:
    """(name, value, expired) of one Set-Cookie header; expired cookies must be forgotten."""
    first, *attrs = header.split(";")
    name, _, value = first.partition("=")
    expired = value.strip() == ""
    for attr in attrs:
        key, _, arg = attr.strip().partition("=")
        key = key.lower()
        if key == "max-age":
            number = _number(arg)
            if number is not None and number <= 0:
                expired = True
        elif key == "expires":
            with contextlib.suppress(TypeError, ValueError):
                expired = expired or parsedate_to_datetime(arg).timestamp() <= time.time()
    return name.strip(), value.strip(), expired


class RestClient:
    """One CodeSync API user: its cookies, its CSRF token, its calls.

    Not thread-safe (one client per simulated user). `transport` defaults to a private
    Urllib3Transport; pass a shared one, or a LocustHttpTransport under Locust.
    """

    def __init__(
        self,
        base_url: str,
        transport: Transport | None = None,
        *,
        observers: tuple[Callable[[ApiResult], None], ...] = (),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._own_transport = transport is None
        self.transport: Transport = transport if transport is not None else Urllib3Transport()
        self.cookies: dict[str, str] = {}
        self.csrf_token: str | None = None
        self.user: dict[str, Any] | None = None
        self._observers: list[Callable[[ApiResult], None]] = list(observers)

    # -- plumbing -----------------------------------------------------------------------

    def observe(self, observer: Callable[[ApiResult], None]) -> None:
        """Call `observer(result)` after every call (the ledger, the Locust adapter)."""
        self._observers.append(observer)

    @property
    def token(self) -> str | None:
        """The JWT from the `token` cookie (what Socket.IO wants as auth.token)."""
        return self.cookies.get("token")

    def cookie_header(self) -> str:
        names = [n for n in COOKIE_ORDER if n in self.cookies] + [n for n in self.cookies if n not in COOKIE_ORDER]
        return "; ".join(f"{name}={self.cookies[name]}" for name in names)

    def _absorb(self, response: Response) -> None:
        for header in response.header_values("set-cookie"):
            name, value, expired = parse_set_cookie(header)
            if not name:
                continue
            if expired:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        token = response.header("x-csrf-token")
        if token:
            self.csrf_token = token
        elif "csrf-token" in self.cookies and self.csrf_token is None:
            self.csrf_token = self.cookies["csrf-token"]

    def call(
        self,
        method: str,
        path: str,
        route: str,
        body: Any = None,
        *,
        csrf: bool | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ApiResult:
        """Send one request to `path` (already encoded), counted under `route`.

        `csrf` defaults to True for state-changing methods; on those the CSRF pair is
        fetched first when none is held. Pass csrf=False to send one without the header.
        """
        method = method.upper()
        send_csrf = method in STATE_CHANGING if csrf is None else csrf
        if send_csrf and self.csrf_token is None and route != HEALTH:
            self.health()
        out: dict[str, str] = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if body is not None:
            out["Content-Type"] = "application/json"
        if self.cookies:
            out["Cookie"] = self.cookie_header()
        if send_csrf and self.csrf_token:
            out["x-csrf-token"] = self.csrf_token
        out.update(headers or {})
        raw_body = json.dumps(body).encode() if body is not None else None
        try:
            response = self.transport.request(method, self.base_url + path, out, raw_body)
        except TransportError as err:
            result = ApiResult(method, route, path, 0, 0.0, b"", None, None, None, transport_error=str(err))
            self._notify(result)
            return result
        self._absorb(response)
        payload: Any = None
        if response.body:
            try:
                payload = json.loads(response.body)
            except ValueError:
                payload = None
        result = ApiResult(
            method=method,
            route=route,
            path=path,
            status=response.status,
            elapsed=response.elapsed,
            body=response.body,
            payload=payload,
            error=None if 200 <= response.status < 300 else parse_error_envelope(payload, response.status),
            rate_limit=parse_rate_limit(response),
        )
        self._notify(result)
        return result

    def _notify(self, result: ApiResult) -> None:
        for observer in self._observers:
            observer(result)

    def close(self) -> None:
        if self._own_transport:
            self.transport.close()

    # -- infrastructure and auth ----------------------------------------------------------

    def health(self) -> ApiResult:
        """GET /health: also the way to obtain the sessionId + csrf-token pair."""
        return self.call("GET", "/health", HEALTH)

    def register(self, email: str, password: str, name: str) -> ApiResult:
        result = self.call(
            "POST", "/api/auth/register", AUTH_REGISTER, {"email": email, "password": password, "name": name}
        )
        self._remember_user(result)
        return result

    def login(self, email: str, password: str) -> ApiResult:
        result = self.call("POST", "/api/auth/login", AUTH_LOGIN, {"email": email, "password": password})
        self._remember_user(result)
        return result

    def _remember_user(self, result: ApiResult) -> None:
        if result.ok and isinstance(result.data, dict):
            user = result.data.get("user", result.data)
            self.user = user if isinstance(user, dict) else None

    def me(self) -> ApiResult:
        return self.call("GET", "/api/auth/me", AUTH_ME)

    def logout(self) -> ApiResult:
        result = self.call("POST", "/api/auth/logout", AUTH_LOGOUT)
        if result.ok:
            self.cookies.pop("token", None)
            self.user = None
        return result

    # -- sessions ------------------------------------------------------------------------

    def create_session(
        self,
        name: str,
        *,
        language: str = "python",
        visibility: str = "PUBLIC",
        description: str | None = None,
    ) -> ApiResult:
        body: dict[str, Any] = {"name": name, "language": language, "visibility": visibility}
        if description is not None:
            body["description"] = description
        return self.call("POST", "/api/sessions", SESSIONS, body)

    def list_sessions(self) -> ApiResult:
        return self.call("GET", "/api/sessions", SESSIONS)

    def get_session(self, session_id: str) -> ApiResult:
        return self.call("GET", f"/api/sessions/{quote(session_id, safe='')}", SESSION)

    def update_session(self, session_id: str, **fields: Any) -> ApiResult:
        return self.call("PATCH", f"/api/sessions/{quote(session_id, safe='')}", SESSION, fields)

    def delete_session(self, session_id: str) -> ApiResult:
        return self.call("DELETE", f"/api/sessions/{quote(session_id, safe='')}", SESSION)

    def add_participant(self, session_id: str, user_id: str, role: str = "EDITOR") -> ApiResult:
        path = f"/api/sessions/{quote(session_id, safe='')}/participants"
        return self.call("POST", path, PARTICIPANTS, {"userId": user_id, "role": role})

    # -- invitations: how the product adds a collaborator ------------------------------------

    def invite(self, session_id: str, email: str, role: str | None = None) -> ApiResult:
        """POST /api/invitations (owner or EDITOR): 201 {invitation: {id, token, ...}}; role defaults to VIEWER."""
        body: dict[str, Any] = {"sessionId": session_id, "email": email}
        if role is not None:
            body["role"] = role
        return self.call("POST", "/api/invitations", INVITATIONS, body)

    def accept_invitation(self, token: str, email: str | None = None) -> ApiResult:
        """POST /api/invitations/accept/<token> as the logged-in invitee: an active participant row."""
        body: dict[str, Any] = {} if email is None else {"email": email}
        return self.call("POST", f"/api/invitations/accept/{quote(token, safe='')}", INVITATION_ACCEPT, body)

    def verify_invitation(self, token: str) -> ApiResult:
        return self.call("GET", f"/api/invitations/verify/{quote(token, safe='')}", INVITATION_VERIFY)

    def list_invitations(self, session_id: str) -> ApiResult:
        return self.call("GET", f"/api/invitations/session/{quote(session_id, safe='')}", SESSION_INVITATIONS)

    def revoke_invitation(self, invitation_id: str) -> ApiResult:
        return self.call("DELETE", f"/api/invitations/{quote(invitation_id, safe='')}", INVITATION)

    # -- files and search ------------------------------------------------------------------

    def list_files(self, session_id: str) -> ApiResult:
        return self.call("GET", f"/api/sessions/{quote(session_id, safe='')}/files", FILES)

    def create_file(self, session_id: str, name: str, file_type: str = "file") -> ApiResult:
        path = f"/api/sessions/{quote(session_id, safe='')}/files"
        return self.call("POST", path, FILES, {"name": name, "type": file_type})

    @staticmethod
    def file_content_path(session_id: str, file_path: str) -> str:
        """The content URL of `file_path`, slashes included, encoded as one path segment."""
        return f"/api/sessions/{quote(session_id, safe='')}/files/{quote(file_path, safe='')}/content"

    def get_file_content(self, session_id: str, file_path: str) -> ApiResult:
        return self.call("GET", self.file_content_path(session_id, file_path), FILE_CONTENT)

    def put_file_content(self, session_id: str, file_path: str, content: str) -> ApiResult:
        return self.call("PUT", self.file_content_path(session_id, file_path), FILE_CONTENT, {"content": content})

    def search(
        self,
        session_id: str,
        query: str,
        *,
        regex: bool | None = None,
        case_sensitive: bool | None = None,
        whole_word: bool | None = None,
    ) -> ApiResult:
        body: dict[str, Any] = {"query": query}
        for key, value in (("regex", regex), ("caseSensitive", case_sensitive), ("wholeWord", whole_word)):
            if value is not None:
                body[key] = value
        return self.call("POST", f"/api/sessions/{quote(session_id, safe='')}/search", SEARCH, body)
