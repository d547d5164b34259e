"""The error-tracker witness: every 5xx the run received is one error event in the tracker.

    >>> r = REGISTRY["server-errors-reach-tracker"].run(ctx)       # ctx with attach_tracker(...)
    >>> print(r.evidence.render())
    method  route          ledger 5xx  ledger 4xx  events  difference
    GET     /api/sessions  12          0           0       -12 (5xx never reported)

Per (method, route) the ledger's 5xx count must equal the events the tracker stored in the
run's window: one to one, tolerance 0 (a 5xx reported twice is as wrong as one never reported;
an event on a route that answered only 4xx means a client error reported as a crash). Each
event must carry the release the target was given (any release, when the target names none
for us: then one and the same on every event), and none may carry the `authorization` or
`cookie` header. Events that name no route (e.g. a socket handler's error) are listed, not
counted against a route.

When 5xx are missing, the check sends a control event of its own (the real sentry-sdk, to the
project's DSN key) and says whether the tracker stored it: stored means the tracker keeps what
reaches it and the target did not deliver; not stored means the tracker itself loses events.
Either way the summary says which, so "never reported" never blames the target without that
control. Control events carry a tag and are never counted.

Events of other clients are set aside, not counted: every request of the harness says
`User-Agent: codesync-load/<version>`, so on a CodeSync others use too (a shared staging
server reporting to the same tracker), an event whose request names another User-Agent is
theirs, and the summary says how many there were. Their headers are still judged: a leaked
credential is a defect whoever sent it. An event without request headers cannot tell, and
counts as the run's.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from codesync_load.errors import is_server_error
from verify.checks.base import CheckError, CheckResult, Evidence, check
from verify.tracker import TrackerError, send_control, settled_events, tracker_of

if TYPE_CHECKING:
    from verify.context import VerifyContext

# Clock slack around the ledger's window: an event is stamped by the server before the client
# records the answer; both clocks are this machine's (or NTP-close for a remote target).
SLACK_S = 1.0


@check(
    "server-errors-reach-tracker",
    group="reconcile",
    needs=("ledger",),
    symptom="a 5xx the users got is missing from the error tracker (or a 4xx is reported as an error)",
)
def server_errors_reach_tracker(ctx: VerifyContext) -> CheckResult:
    access = tracker_of(ctx)
    ledger = ctx.ledger
    fives: Counter[tuple[str, str]] = Counter()
    fours: Counter[tuple[str, str]] = Counter()
    for (method, route, status), n in ledger.entries("http"):
        if is_server_error(int(status)):
            fives[(str(method), str(route))] += n
        elif 400 <= int(status) < 500:
            fours[(str(method), str(route))] += n
    since, until = ctx.window.start - SLACK_S, ctx.window.end + SLACK_S
    try:
        events = settled_events(access, since, until, expected=sum(fives.values()))
    except TrackerError as err:
        raise CheckError(f"cannot judge: {err}") from None
    events = [event for event in events if not event.control]  # the harness's own, of an earlier check
    templates = sorted({route for _m, route in fives | fours}, key=lambda r: (-r.count("/"), r))
    seen: Counter[tuple[str, str]] = Counter()
    unrouted = []
    others = []
    for event in events:
        if event.from_other_client:
            others.append(event)
            continue
        route = event.route(templates)
        if route is None:
            unrouted.append(event)
        else:
            seen[(event.method or event.transaction.partition(" ")[0], route)] += 1
    target = (ctx.ledger_doc.get("meta") or {}).get("api_url") or "the run's target"
    measured = f"{len(events)} events of {target} in {access.label}, stamped {since:.3f}..{until:.3f}"
    if others:
        measured += f" ({len(others)} of other clients, not counted)"
    where = f"ledger {ctx.describe('ledger')}"

    ev = Evidence(("method", "route", "ledger 5xx", "ledger 4xx", "events", "difference"))
    for key in sorted(set(fives) | set(seen)):
        want, got = fives.get(key, 0), seen.get(key, 0)
        if want == got:
            continue
        why = "5xx never reported" if got < want else ("4xx reported as errors" if fours.get(key) else "no 5xx seen")
        ev.add(*key, want, fours.get(key, 0), got, f"{got - want:+d} ({why})")
    for event in events:
        leaked = event.sensitive_headers
        if leaked:
            ev.add(
                event.method or "-", event.route(templates) or "-", "-", "-", event.id, f"carries {', '.join(leaked)}"
            )
    releases = Counter(event.release for event in events)
    release_note = _release_problem(access.release, releases)
    if release_note:
        ev.add("-", "-", "-", "-", ", ".join(f"{r or 'none'} x{n}" for r, n in releases.items()), release_note)
    notes = (
        f"; {len(unrouted)} event(s) name no route (not HTTP): " + ", ".join(e.title or e.id for e in unrouted[:3])
        if unrouted
        else ""
    )
    if others:
        agents = Counter(str(event.user_agent) for event in others)
        named = ", ".join(f"{agent!r} x{n}" for agent, n in agents.most_common(3))
        notes += f"; {len(others)} event(s) of other clients set aside (User-Agent {named})"
    total = sum(fives.values())
    if any(seen.get(key, 0) < n for key, n in fives.items()):
        # Before "never reported" reads as the target's fault: does this tracker keep an event
        # that does reach it? (A tracker that drops events would make the target look guilty.)
        notes += "; " + send_control(access).sentence(target)
    if ev.rows:
        return CheckResult.failed(
            f"{len(ev.rows)} mismatch(es) between the run's {total} 5xx and the tracker's events{notes}",
            measured=measured,
            expected=f"one event per 5xx with its route ({where}), none for a 4xx, release "
            f"{access.release or 'consistent'}, no authorization/cookie header",
            evidence=ev,
        )
    if not total:  # only the 4xx half was judged: say that the delivery of errors was not exercised
        return CheckResult.passed(
            f"no 5xx in the run and no event for its {sum(fours.values())} 4xx (whether a 5xx would reach "
            f"the tracker is not exercised by this run){notes}",
            measured=measured,
        )
    release = f"release {access.release}" if access.release else _release_words(releases)
    return CheckResult.passed(
        f"{total} 5xx on {len(fives)} route(s), {len(events) - len(others)} events one to one; no event for the "
        f"{sum(fours.values())} 4xx; {release}; no authorization/cookie header{notes}",
        measured=measured,
    )


def _release_problem(expected: str | None, releases: Counter[str | None]) -> str | None:
    """Why the events' releases are wrong, or None."""
    if not releases:
        return None
    if expected is not None:
        wrong = sum(n for r, n in releases.items() if r != expected)
        return f"{wrong} event(s) without release {expected}" if wrong else None
    if len(releases) > 1:
        return "events disagree on the release"
    return None


def _release_words(releases: Counter[str | None]) -> str:
    if not releases:
        return "no event to carry a release"
    (release,) = releases
    return f"release {release} on every event" if release else "the target sets no release (not judged)"
