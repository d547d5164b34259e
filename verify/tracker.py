"""The error tracker's side of a run: the events Bugsink stored, read through its token API.

    >>> access = TrackerAccess.from_record(stack.tracker_record)     # url, token, project, release
    >>> attach_tracker(ctx, access)
    >>> events = settled_events(access, since=w.start, until=w.end, expected=12)
    >>> events[0].method, events[0].route, events[0].release
    ('GET', '/api/sessions', 'codesync-twin@0.1.0')

Why a module of its own: the check (verify/checks/errors_tracked.py) stays a verdict over two
tables, while reading Bugsink (issues, then their events, then each event's data, paginated by
cursor) and waiting for the SDKs' asynchronous delivery live here, usable by tests too.

Routes: an event names its route as Sentry's Express integration does, in the transaction
"METHOD /route/:param"; an event with no transaction is placed by its request's method and URL
path, matched against the run's route templates (":param" = one path segment).
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from scenarios.clients.rest import USER_AGENT_PRODUCT

ATTRIBUTE = "tracker"
API = "/api/canonical/0"
SENSITIVE_HEADERS = ("authorization", "cookie")
# No new event for this long after the run: delivery has drained (the SDK sends one at a time,
# each taking tens of ms; a pause this long means its queue is empty).
STILL_S = 4.0


# The tag a control event carries (its value a nonce): the reconciliation never counts one.
CONTROL_TAG = "codesync_load_control"
CONTROL_MESSAGE = "codesync-load control event (sent by the harness to test this tracker, not by CodeSync)"
CONTROL_TIMEOUT_S = 30.0

# Where `--tracker-token` is read from when not given (a token is a secret: not on a command line).
TOKEN_ENV = "BUGSINK_TOKEN"


class TrackerError(Exception):
    """The tracker could not be read: the check that needed it cannot judge (the others still run)."""


@dataclass(frozen=True)
class TrackerAccess:
    """Where the run's error events are, and the release the target was given (None: unknown)."""

    url: str
    token: str
    project_id: int
    release: str | None = None

    @classmethod
    def from_record(cls, record: dict[str, Any] | None) -> TrackerAccess | None:
        if not record or not record.get("url") or not record.get("token"):
            return None
        return cls(
            record["url"].rstrip("/"), record["token"], int(record.get("project_id") or 1), record.get("release")
        )

    @property
    def label(self) -> str:
        return f"Bugsink {self.url} project {self.project_id}"

    def get(self, path: str, **query: Any) -> dict[str, Any]:
        url = path if path.startswith("http") else f"{self.url}{API}{path}"
        if query:
            url += ("&" if "?" in url else "?") + urlencode(query)
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as err:
            if err.code in (401, 403):
                raise TrackerError(
                    f"the error tracker at {self.url} refused the API token ({err.code}); pass a token of "
                    f"that Bugsink (--tracker-token or ${TOKEN_ENV})"
                ) from None
            raise TrackerError(
                f"the error tracker answered {err.code} to GET {url}; is the Bugsink at {self.url} still up, "
                f"with a project {self.project_id}?"
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as err:
            raise TrackerError(
                f"the error tracker at {self.url} does not answer ({err}); start it (or the stack) again"
            ) from None

    def pages(self, path: str, **query: Any) -> Iterable[dict[str, Any]]:
        """Every result of a cursor-paginated list."""
        page = self.get(path, **query)
        while True:
            yield from page.get("results") or []
            if not page.get("next"):
                return
            page = self.get(page["next"])


@dataclass(frozen=True)
class TrackerEvent:
    """One stored error event, reduced to what the reconciliation compares."""

    id: str
    timestamp: float
    transaction: str = ""
    method: str = ""
    path: str = ""
    release: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    cookies: bool = False
    title: str = ""
    control: str = ""  # the nonce of a control event the harness sent itself ("" for any other)

    def route(self, templates: Iterable[str] = ()) -> str | None:
        """The run's route template this event is about: the transaction's route when it is one
        of them, or has its shape (Express may name a parameter `:sessionId` where the ledger
        says `:id`); else the template the request URL matches; else what the event names.
        So a naming difference between CodeSync's router and the ledger is never a mismatch."""
        templates = list(templates)
        method, _, named = self.transaction.partition(" ")
        named = named if named.startswith("/") and (not self.method or method == self.method) else ""
        if named in templates:
            return named
        if named:
            shape = _shape(named)
            for template in templates:
                if _shape(template) == shape:
                    return template
        if self.path:
            for template in templates:
                if _template_regex(template).fullmatch(self.path):
                    return template
        return named or self.path or None

    @property
    def user_agent(self) -> str | None:
        """The User-Agent of the request the event reports (None: the event carries no headers)."""
        return next((value for name, value in self.headers.items() if name.lower() == "user-agent"), None)

    @property
    def from_other_client(self) -> bool:
        """The request came from a client other than the harness (its User-Agent says so).
        An event without headers cannot tell: it counts as the run's."""
        agent = self.user_agent
        return agent is not None and not agent.startswith(USER_AGENT_PRODUCT + "/")

    @property
    def sensitive_headers(self) -> list[str]:
        found = [name for name in self.headers if name.lower() in SENSITIVE_HEADERS]
        return sorted(found) + (["cookies"] if self.cookies else [])


def _shape(route: str) -> str:
    """A route with its parameter names dropped: /api/sessions/:sessionId -> /api/sessions/:"""
    return "/".join(":" if seg.startswith(":") else seg for seg in route.rstrip("/").split("/"))


def _template_regex(template: str) -> re.Pattern[str]:
    parts = [("[^/]+" if seg.startswith(":") else re.escape(seg)) for seg in template.split("/")]
    return re.compile("/".join(parts))


def _epoch(stamp: str | float | None) -> float:
    if stamp is None:
        return 0.0
    if isinstance(stamp, int | float):
        return float(stamp)
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _event(summary: dict[str, Any], data: dict[str, Any]) -> TrackerEvent:
    request = data.get("request") or {}
    headers = request.get("headers") or {}
    if isinstance(headers, list):  # the protocol allows [[name, value], ...]
        headers = {str(k): str(v) for k, v in headers}
    exc = ((data.get("exception") or {}).get("values") or [{}])[-1]
    return TrackerEvent(
        id=str(summary["id"]),
        timestamp=_epoch(summary.get("timestamp") or data.get("timestamp")),
        transaction=str(data.get("transaction") or ""),
        method=str(request.get("method") or "").upper(),
        path=urlsplit(str(request.get("url") or "")).path,
        release=data.get("release") or None,
        headers={str(k): str(v) for k, v in headers.items()},
        cookies=bool(request.get("cookies")),
        title=f"{exc.get('type', '')}: {exc.get('value', '')}".strip(": "),
        control=_tags(data).get(CONTROL_TAG, ""),
    )


def _tags(data: dict[str, Any]) -> dict[str, str]:
    """An event's tags (the protocol allows a mapping or [[name, value], ...])."""
    tags = data.get("tags") or {}
    if isinstance(tags, list):
        return {str(pair[0]): str(pair[1]) for pair in tags if isinstance(pair, list | tuple) and len(pair) == 2}
    return {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}


def _summaries(access: TrackerAccess, since: float, until: float) -> list[dict[str, Any]]:
    """The list entries (no data) of every event stamped within [since, until]."""
    out = []
    for issue in access.pages("/issues/", project=access.project_id):
        if _epoch(issue.get("last_seen")) < since:
            continue
        for summary in access.pages("/events/", issue=issue["id"]):
            if since <= _epoch(summary.get("timestamp")) <= until:
                out.append(summary)
    return out


def settled_events(
    access: TrackerAccess, since: float, until: float, expected: int, timeout: float = 180.0
) -> list[TrackerEvent]:
    """The run's events once delivery settled.

    SDKs send from a background queue and Bugsink digests each event in its request (a burst of
    400 took 16 s to drain here on two shared cores), so: done once at least `expected` arrived
    and the count held still for 0.5 s, or once nothing new arrived for STILL_S after the run
    (no more is coming); while events keep arriving it waits, up to `timeout` s past the run."""
    deadline = max(time.time(), until) + timeout
    last, still_since = -1, time.monotonic()
    while True:
        summaries = _summaries(access, since, until)
        if len(summaries) != last:
            last, still_since = len(summaries), time.monotonic()
        still = time.monotonic() - still_since
        settled = last >= expected and still >= 0.5
        drained = still >= STILL_S and time.time() > until + STILL_S
        if settled or drained or time.time() > deadline:
            break
        time.sleep(0.25)
    return [_event(s, access.get(f"/events/{s['id']}/").get("data") or {}) for s in summaries]


@dataclass(frozen=True)
class ControlOutcome:
    """What became of one event the harness sent to the tracker itself, through the real
    sentry-sdk, to the project's own DSN key: the control that tells "the target did not send
    its errors" from "the tracker lost them" before the check blames either."""

    dsn: str  # where it was sent (the key shown, as the DSN carries it)
    stored_after: float | None = None  # seconds until the API listed it; None: not within the timeout
    error: str | None = None  # why no control could be sent
    waited: float = 0.0  # how long the API was watched for it

    def sentence(self, target: str) -> str:
        """The control's finding, for a check's summary."""
        if self.error:
            return f"control not run ({self.error}): which side lost the events is not known"
        if self.stored_after is None:
            return (
                f"control: an event the harness sent to {self.dsn} was not stored within {self.waited:.0f} s "
                "either: this tracker (its ingestion, quota or project) loses events, so the missing ones may be "
                "its loss, not the target's"
            )
        return (
            f"control: an event the harness sent to {self.dsn} was stored after {self.stored_after:.1f} s, so this "
            f"tracker keeps what reaches it: {target} did not deliver the missing events to it (is its "
            "SENTRY_DSN this project's, and does its error handler report?)"
        )


def ingest_dsn(access: TrackerAccess) -> str:
    """The project's DSN as Bugsink's API gives it, with the host the harness reaches the tracker
    at (a compose network's `bugsink:8000` is not reachable from the host): same key and project."""
    project = access.get(f"/projects/{access.project_id}/")
    dsn = str(project.get("dsn") or "")
    parts = urlsplit(dsn)
    if not parts.username or not parts.path.strip("/"):
        raise TrackerError(f"project {access.project_id} of {access.url} names no DSN in its API answer")
    reach = urlsplit(access.url)
    return parts._replace(scheme=reach.scheme, netloc=f"{parts.username}@{reach.netloc}").geturl()


def send_control(access: TrackerAccess, timeout: float | None = None) -> ControlOutcome:
    """Send one control event with the real sentry-sdk (a client of its own: the process's
    global SDK state is untouched) and wait until the tracker's API lists it."""
    import secrets

    import sentry_sdk

    try:
        dsn = ingest_dsn(access)
    except TrackerError as err:
        return ControlOutcome(dsn="-", error=str(err))
    timeout = CONTROL_TIMEOUT_S if timeout is None else timeout
    nonce = secrets.token_hex(8)
    sent = time.time()
    client = sentry_sdk.Client(dsn=dsn, default_integrations=False)
    try:
        with sentry_sdk.new_scope() as scope:
            scope.set_client(client)
            scope.set_tag(CONTROL_TAG, nonce)
            sentry_sdk.capture_message(CONTROL_MESSAGE, level="info")
        client.flush(timeout=10)
    finally:
        client.close()
    seen: set[str] = set()
    while True:
        try:
            for summary in _summaries(access, sent - 1.0, time.time() + 1.0):
                if summary["id"] in seen:
                    continue
                seen.add(summary["id"])
                event = _event(summary, access.get(f"/events/{summary['id']}/").get("data") or {})
                if event.control == nonce:
                    return ControlOutcome(dsn=dsn, stored_after=max(0.0, time.time() - sent))
        except TrackerError as err:  # the tracker went away meanwhile: no finding either way
            return ControlOutcome(dsn=dsn, error=str(err))
        if time.time() - sent > timeout:
            return ControlOutcome(dsn=dsn, waited=timeout)
        time.sleep(0.25)


def add_tracker_arguments(parser: Any) -> None:
    """`--tracker-*` of `verify` and `gate` (an argparse parser): the Bugsink a CodeSync of yours
    reports to, when it is not the one `stack up` started."""
    group = parser.add_argument_group(
        "error tracker (default: the Bugsink of the recorded stack; these name a Bugsink of yours)"
    )
    group.add_argument("--tracker-url", default=None, help="Bugsink base URL your CodeSync's SENTRY_DSN points at")
    group.add_argument("--tracker-token", default=None, help=f"its API token (default ${TOKEN_ENV}; kept out of `ps`)")
    group.add_argument("--tracker-project", type=int, default=None, help="the project id in its DSN (default 1)")
    group.add_argument(
        "--tracker-release", default=None, help="the release CodeSync sets (SENTRY_RELEASE); default: any, consistent"
    )


def access_from_args(args: Any, recorded: dict[str, Any] | None) -> TrackerAccess | None:
    """`access_from_options` for parsed `add_tracker_arguments` options."""
    return access_from_options(
        args.tracker_url, args.tracker_token, args.tracker_project, args.tracker_release, recorded
    )


def access_from_options(
    url: str | None,
    token: str | None,
    project: int | None,
    release: str | None,
    recorded: dict[str, Any] | None,
) -> TrackerAccess | None:
    """The tracker a command reads: the Bugsink of the user's own that --tracker-url names
    (the one their CodeSync reports to), else the recorded stack's (None: no tracker known).
    Every wrong combination is one line that says what to pass."""
    from codesync_load.errors import HarnessError
    from codesync_load.urls import require_http_url

    if not url:
        if token or project is not None or release:
            raise HarnessError(
                "--tracker-token/--tracker-project/--tracker-release describe a Bugsink of yours: "
                "pass --tracker-url URL too (without it the recorded stack's tracker is read)"
            )
        return TrackerAccess.from_record(recorded)
    require_http_url(url, "--tracker-url", "http://127.0.0.1:8000")
    token = token or os.environ.get(TOKEN_ENV) or None
    if not token:
        raise HarnessError(
            f"--tracker-url {url} needs an API token: pass --tracker-token or set {TOKEN_ENV} "
            "(Bugsink: `bugsink-manage create_auth_token`)"
        )
    if project is not None and project < 1:
        raise HarnessError(f"--tracker-project {project}: Bugsink numbers projects from 1; pass the project's id")
    return TrackerAccess(url.rstrip("/"), token, project or 1, release or None)


def attach_tracker(ctx: Any, access: TrackerAccess | None) -> None:
    """Give `ctx` the error tracker of its target (None: the target has none known)."""
    setattr(ctx, ATTRIBUTE, access)


def tracker_of(ctx: Any) -> TrackerAccess:
    """The context's tracker; MissingInput (not applicable) when no tracker is known for the run.

    Not applicable, like Grafana or the uptime probe where a stack lacks them: a stack without a
    tracker (a Prometheus of the user's own, started without `stack up`) is a part missing from
    the stack, not a defect of the target, so `--strict` must not fail a gate for it. It is
    listed as not judged, never counted as passed.
    """
    from verify.checks.base import MissingInput

    access = getattr(ctx, ATTRIBUTE, None)
    if access is None:
        raise MissingInput(
            "no error tracker known for this run: the stack that ran it records none "
            "(`codesync-load stack up` starts Bugsink and gives its DSN; --tracker-url names one of yours)",
            applies=False,
        )
    return access
