"""Security and integrity checks, run against a live target during or after a load run.

    >>> attach_live(ctx, target=LiveTarget.from_stack(stack))
    >>> [r.verdict for r in run_checks(ctx, selected(groups=["integrity"]))]
    ['pass', 'pass', 'pass', 'pass', 'pass', 'pass', 'pass', 'pass']

Each check spends only what is its own: fresh users, fresh sessions and documents, fresh
loopback client addresses (127.x.y.z) for Yjs, so it neither disturbs a load run going on
nor is disturbed by it, and each metric delta it reads is exact. Names say the property
that holds when they pass; a failure's summary says the symptom:

- metrics-token-enforced: both /metrics pages (API and Yjs) answer 401 without a token,
  403 with a wrong one, 200 with the right one (skipped when the target has no token).
- csrf-enforced: every state-changing route refuses a missing x-csrf-token (401
  CSRF_MISSING) and a wrong one (401 CSRF_INVALID), and the refused calls changed nothing.
- authorization-matrix: a signed-in stranger gets 403 on every state-changing route of a
  session it neither owns nor was invited to (file writes and creation, invitations,
  participants, session PATCH/DELETE; nobody adds itself or accepts another's invitation),
  a PRIVATE session stays unreadable to it, an invited VIEWER can neither write, invite nor
  raise its own role, and nothing changed after the refusals (verify/live/authz.py).
- rate-limit-counted-{files,search,socketio,yjs}: the limiter admits exactly its limit,
  refuses the rest (429 with the headers; close 1008; for Socket.IO a connect_error or, as
  CodeSync does, a connect followed at once by a server disconnect: every shape is a refusal)
  and counts every refusal in codesync_rate_limit_hits_total{type, user_id} exactly.
- no-yjs-edit-lost: editors converge on every edit, and the stored document read back
  after the last one left is the same text.
- hostile-inputs-harmless: malformed JSON, a huge body, garbage WebSocket frames on the Yjs
  port and a garbage Socket.IO packet get the contract's error or a closed socket; the
  target still answers and the data written before is intact.

A 5xx from the target is its failure, not the symptom a check tests for: met in a check's
set-up, the check fails with "the target failed the check's set-up: ..."; met while probing,
with "cannot judge CSRF: the target answered 500 INTERNAL_ERROR on PUT <route> ..." (status and
route of each, verify/live/server_errors.py), unless the other probes showed the symptom itself.
"""

from __future__ import annotations

import uuid
from typing import Any

from codesync_load.contract import load_routes
from scenarios.clients.rest import (
    AUTH_LOGIN,
    AUTH_LOGOUT,
    AUTH_REGISTER,
    FILE_CONTENT,
    FILES,
    INVITATION,
    INVITATION_ACCEPT,
    INVITATIONS,
    PARTICIPANTS,
    SEARCH,
    SESSION,
    SESSIONS,
    RestClient,
)
from scenarios.clients.yjs import YjsClient, YjsError
from verify.checks.base import CheckResult, Evidence, check, first_failure
from verify.live.actors import fresh_email, fresh_loopback, fresh_session, fresh_user, user_id
from verify.live.authz import entity, probe_matrix
from verify.live.edits import edit_and_reload
from verify.live.hostile import send_hostile
from verify.live.inputs import live_inputs
from verify.live.limits import LIMITS, exhaust
from verify.live.scrape import MetricsUnreachable, metrics_status, read_metrics, sample
from verify.live.server_errors import ServerErrors

GROUP = "integrity"
RATE_LIMIT_HITS = "codesync_rate_limit_hits_total"


# -- /metrics token ----------------------------------------------------------------------------


@check(
    "metrics-token-enforced",
    group=GROUP,
    symptom="/metrics serves the telemetry without the token, or with a wrong one",
)
def metrics_token_enforced(ctx: Any) -> CheckResult:
    target = live_inputs(ctx).require_target()
    evidence = Evidence(("endpoint", "authorization", "status", "expected"))
    if not target.metrics_token:
        return _without_token(target, evidence)
    wrong = target.metrics_token + "-wrong"
    bad = []
    for where, url in (("API", target.api_url), ("Yjs", target.yjs_http_url)):
        for label, token, expected in (
            ("none", None, 401),
            ("wrong bearer", wrong, 403),
            ("right bearer", target.metrics_token, 200),
        ):
            try:
                status, body = metrics_status(url, token)
            except MetricsUnreachable as err:  # a page that never answers fails the check, by name
                evidence.add(f"{where} {url}/metrics", label, "no answer", expected)
                bad.append(f"{where} {err}: cannot judge its token")
                break
            ok = status == expected and (expected != 200 or b"codesync_" in body)
            evidence.add(f"{where} {url}/metrics", label, status, expected)
            if not ok:
                bad.append(f"{where} /metrics with {label} answered {status}")
    if bad:
        return CheckResult.failed("; ".join(bad), expected="401 / 403 / 200 on both", evidence=evidence)
    return CheckResult.passed(
        "both /metrics pages refuse a missing (401) and a wrong (403) token",
        measured="6 of 6 answers as expected",
        expected="401 / 403 / 200 on both",
        evidence=evidence,
    )


def _without_token(target: Any, evidence: Evidence) -> CheckResult:
    """The harness knows no token: an open /metrics (the telemetry served to anyone) is the very
    symptom and fails with it; a /metrics that refuses a request without a token cannot be judged
    further (the right token is needed to show it is served at all), which is named, not passed."""
    open_pages = []
    for where, url in (("API", target.api_url), ("Yjs", target.yjs_http_url)):
        status, body = metrics_status(url, None)
        evidence.add(f"{where} {url}/metrics", "none", status, 401)
        if status == 200 and b"codesync_" in body:
            open_pages.append(f"{where} /metrics")
    if open_pages:
        return CheckResult.failed(
            f"{' and '.join(open_pages)} served the telemetry without a token (200): no METRICS_TOKEN is enforced",
            expected="401 without a token",
            evidence=evidence,
        )
    return CheckResult.skipped(
        "/metrics refuses a request without a token, but the harness was given none to check the rest "
        "(pass --metrics-token, or the stack's)",
        evidence=evidence,
    )


# -- CSRF -------------------------------------------------------------------------------------


def csrf_recipes(
    session_id: str, participant: str, invitation: dict[str, Any]
) -> dict[tuple[str, str], tuple[str, Any]]:
    """(method, route template) -> (path, body) of one request to that route, for the CSRF probe.

    Which routes to probe comes from the contract (codesync_load/contract/routes.toml, `csrf =
    true`); this table only knows how to call each. A route the contract adds without a recipe
    here is named in the verdict as not covered. `invitation` is a pending one of the session
    (its id and token): accepting or revoking it must need the token too.
    """
    sid = session_id
    token, invitation_id = str(invitation.get("token")), str(invitation.get("id"))
    return {
        ("POST", AUTH_REGISTER): (
            AUTH_REGISTER,
            {"email": f"csrf-{uuid.uuid4().hex[:12]}@example.test", "password": "Forged-Passw0rd", "name": "csrf"},
        ),
        ("POST", AUTH_LOGIN): (AUTH_LOGIN, {"email": "nobody@example.test", "password": "Forged-Passw0rd"}),
        ("POST", SESSIONS): (SESSIONS, {"name": "csrf forged", "language": "python", "visibility": "PUBLIC"}),
        ("PATCH", SESSION): (f"/api/sessions/{sid}", {"name": "csrf forged"}),
        ("DELETE", SESSION): (f"/api/sessions/{sid}", None),
        ("POST", PARTICIPANTS): (f"/api/sessions/{sid}/participants", {"userId": participant, "role": "VIEWER"}),
        ("POST", FILES): (f"/api/sessions/{sid}/files", {"name": "forged.py", "type": "file"}),
        ("PUT", FILE_CONTENT): (RestClient.file_content_path(sid, "src/csrf.py"), {"content": "forged"}),
        ("POST", SEARCH): (f"/api/sessions/{sid}/search", {"query": "x"}),
        ("POST", AUTH_LOGOUT): (AUTH_LOGOUT, None),
        ("POST", INVITATIONS): (INVITATIONS, {"sessionId": sid, "email": fresh_email("csrf-forged"), "role": "EDITOR"}),
        ("POST", INVITATION_ACCEPT): (f"/api/invitations/accept/{token}", {}),
        ("DELETE", INVITATION): (f"/api/invitations/{invitation_id}", None),
    }


@check("csrf-enforced", group=GROUP, symptom="a state-changing route accepts a request without a valid CSRF token")
def csrf_enforced(ctx: Any) -> CheckResult:
    target = live_inputs(ctx).require_target()
    owner = fresh_user(target.api_url, "csrf")
    try:
        session_id = fresh_session(owner, name="csrf original")
        sid = session_id
        pending = entity(owner.invite(sid, fresh_email("csrf-invitee"), "EDITOR").raise_for_error(), "invitation")
        recipes = csrf_recipes(sid, user_id(owner), pending)
        guarded = [r for r in load_routes() if r.csrf]
        calls = [(r.method, *recipes[(r.method, r.path)], r.path) for r in guarded if (r.method, r.path) in recipes]
        calls = [(method, path, route, body) for method, path, body, route in calls]
        not_covered = [f"{r.method} {r.path}" for r in guarded if (r.method, r.path) not in recipes]
        evidence = Evidence(("route", "x-csrf-token", "status", "code", "expected"))
        for route in not_covered:
            evidence.add(route, "-", "-", "-", "not covered: no request recipe (csrf_recipes)")
        bad = []
        errors = ServerErrors()  # 5xx: the target failed, which says nothing about CSRF
        for method, path, route, body in calls:
            for label, kwargs, code in (
                ("missing", {"csrf": False}, "CSRF_MISSING"),
                ("wrong", {"headers": {"x-csrf-token": "0" * 64}}, "CSRF_INVALID"),
            ):
                result = owner.call(method, path, route, body, **kwargs)
                evidence.add(f"{method} {route}", label, result.status, result.error_code, f"401 {code}")
                if not errors.note(result, f"{label} token") and (result.status, result.error_code) != (401, code):
                    bad.append(f"{method} {route} with {label} token: {result.status} {result.error_code}")
        # The refused calls changed nothing: the session is still there, named as created,
        # no file was written, and the owner is still logged in.
        session = owner.get_session(sid)
        name = (session.data or {}).get("session", {}).get("name") if session.ok else None
        files = owner.get_file_content(sid, "src/csrf.py")
        me = owner.me()
        invitations = owner.list_invitations(sid)
        listed = (invitations.data or {}).get("invitations", []) if invitations.ok else []
        kept = [(i.get("id"), i.get("acceptedAt")) for i in listed if isinstance(i, dict)]
        evidence.add("GET session afterwards", "-", session.status, name, "200 csrf original")
        evidence.add(
            "GET invitations afterwards", "-", invitations.status, kept, f"200 [({pending.get('id')!r}, None)]"
        )
        evidence.add("GET src/csrf.py afterwards", "-", files.status, files.error_code, "404 (never written)")
        evidence.add("GET /api/auth/me afterwards", "-", me.status, me.error_code, "200 (not logged out)")
        if not errors.note(session, "read back") and name != "csrf original":
            bad.append(f"the session was changed or deleted by a refused call (now {session.status} {name!r})")
        if not errors.note(files, "read back") and files.ok:
            bad.append("a refused PUT wrote file content")
        if not errors.note(me, "read back") and not me.ok:
            bad.append("a refused logout logged the user out")
        if not errors.note(invitations, "read back") and kept != [(pending.get("id"), None)]:
            bad.append(f"a refused call created, accepted or revoked an invitation (now {kept})")
    finally:
        owner.close()
    expected = f"{len(calls)} routes x (missing, wrong) -> 401 CSRF_MISSING / CSRF_INVALID, nothing changed"
    uncovered = f"; not covered (no request recipe): {', '.join(not_covered)}" if not_covered else ""
    if bad:  # a definite symptom outweighs the target's failures elsewhere (all are in the evidence)
        return CheckResult.failed(
            "CSRF not enforced: " + "; ".join(bad) + uncovered, expected=expected, evidence=evidence
        )
    errors.raise_if_any("CSRF", evidence)
    return CheckResult.passed(
        f"all {len(calls)} probed state-changing routes of the contract refuse a missing and a wrong CSRF token, "
        f"and change nothing{uncovered}",
        measured=f"{2 * len(calls)} refusals",
        expected=expected,
        evidence=evidence,
    )


# -- authorization ------------------------------------------------------------------------------


@check(
    "authorization-matrix",
    group=GROUP,
    symptom="a user who is neither owner nor invited participant changed a session, or read a PRIVATE one",
)
def authorization_matrix(ctx: Any) -> CheckResult:
    target = live_inputs(ctx).require_target()
    run = probe_matrix(target)
    evidence = Evidence(("who", "tries to", "route", "status", "code", "expected"))
    errors = ServerErrors()  # a 5xx refuses nothing and allows nothing: the target failed
    allowed, other = [], []
    for probe in run.probes:
        result = probe.result
        evidence.add(probe.who, probe.what, probe.route, result.status, result.error_code, probe.expected)
        if errors.note(result, f"{probe.who}: {probe.what}"):
            continue
        if probe.allowed:
            allowed.append(f"{probe.route} let a {probe.who} {probe.what} ({result.status})")
        elif not probe.refused_as_expected:
            other.append(f"{probe.route} ({probe.who}: {probe.what}) refused with {result.status} {result.error_code}")
    for what, found, expected_now in run.after:
        evidence.add("owner", f"read back {what}", "-", found, "-", expected_now)
    read_back_errors = [r for r in run.after_results if errors.note(r, "owner's read-back")]
    changed = [] if read_back_errors else run.changed()
    expected = (
        f"{sum(not p.read for p in run.probes)} state-changing attempts -> 403, "
        f"{sum(p.read for p in run.probes)} PRIVATE reads -> 403/404, nothing changed"
    )
    if allowed or changed:
        problems = allowed + [f"after the refusals {c}" for c in changed]
        return CheckResult.failed(
            "authorization not enforced: " + "; ".join(problems),
            measured=f"{len(allowed)} of {len(run.probes)} attempts allowed, {len(changed)} changes",
            expected=expected,
            evidence=evidence,
        )
    errors.raise_if_any("authorization", evidence)
    note = f"; refused otherwise than 403: {'; '.join(other)}" if other else ""
    return CheckResult.passed(
        f"all {len(run.probes)} attempts by a stranger and a viewer were refused and changed nothing{note}",
        measured=f"{len(run.probes) - len(other)} refused as expected, {len(other)} otherwise",
        expected=expected,
        evidence=evidence,
    )


# -- rate limits --------------------------------------------------------------------------------


def _rate_limit_check(limiter: str) -> None:
    refusal = {"yjs": "close 1008", "socketio": "connect_error or server disconnect at connect"}.get(
        limiter, "429 RATE_LIMIT"
    )

    @check(
        f"rate-limit-counted-{limiter}",
        group=GROUP,
        symptom=f"the {limiter} limit is not enforced at {LIMITS[limiter]}, or its refusals are not counted "
        f"in {RATE_LIMIT_HITS}",
    )
    def counted(ctx: Any) -> CheckResult:
        target = live_inputs(ctx).require_target()
        extra = 3
        run = exhaust(target, limiter, extra=extra)
        series = ",".join(f'{k}="{v}"' for k, v in run.series.items())
        after = sample(read_metrics(run.metrics_url, target.metrics_token), RATE_LIMIT_HITS, **run.series)
        evidence = Evidence(("what", "measured", "expected"))
        evidence.add("admitted", run.admitted, run.limit)
        evidence.add(f"refused ({refusal})", run.refused, extra)
        evidence.add("refusal shapes seen", dict(run.refusal_shapes) or "-", refusal)
        evidence.add("other answers", dict(run.other) or "-", "-")
        evidence.add(f"{RATE_LIMIT_HITS}{{{series}}}", after, extra)
        for problem in run.header_problems:
            evidence.add("429 headers", problem, "X-RateLimit-Limit/Remaining/Reset, Retry-After")
        for error in run.server_errors.seen:
            evidence.add("server error", error, "-")
        measured = f"{run.admitted} admitted, {run.refused} refused, counter {after:g}"
        expected = f"{run.limit} admitted, {extra} refused, counter {extra} (fresh series)"
        # After a 5xx the admitted/refused split proves nothing about the limit; the 429s that
        # did come must still carry the headers and be counted, each one.
        result = first_failure(
            [
                (
                    not run.server_errors and (run.admitted != run.limit or run.refused != extra or run.other),
                    f"the {limiter} limit is not enforced as {run.limit} per {60} s",
                ),
                (
                    run.header_problems,
                    f"429s of the {limiter} limit lack the contract's headers: {'; '.join(run.header_problems)}",
                ),
                (
                    after != run.refused,
                    f"rate-limit rejections not counted: {run.refused} {limiter} refusals moved {RATE_LIMIT_HITS}"
                    f"{{{series}}} by {after:g}",
                ),
            ],
            f"the {limiter} limit admits {run.limit}, refuses the rest and counts each refusal exactly",
            measured=measured,
            expected=expected,
            evidence=evidence,
        )
        if result.ok:
            run.server_errors.raise_if_any(f"the {limiter} limit", evidence)
        return result


for _limiter in LIMITS:
    _rate_limit_check(_limiter)


# -- Yjs persistence -----------------------------------------------------------------------------


@check("no-yjs-edit-lost", group=GROUP, symptom="Yjs edits lost: editors diverge, or the stored document lacks edits")
def no_yjs_edit_lost(ctx: Any) -> CheckResult:
    target = live_inputs(ctx).require_target()
    editors, edits = 3, 10
    run = edit_and_reload(target, editors=editors, edits=edits)
    evidence = Evidence(("who", "chars", "same as converged"))
    for index, text in enumerate(run.texts):
        evidence.add(f"editor {index}", len(text), text == run.final)
    if run.reloaded is not None:
        evidence.add("newcomer after all left", len(run.reloaded), run.reloaded == run.final)
    evidence.add(
        "document unloaded before reload",
        {None: "gauge unreadable", True: "yes", False: "not seen"}[run.unload_seen],
        "-",
    )
    expected = f"{editors} editors x {edits} edits = {run.expected_chars} chars everywhere, also after reload"
    if run.problem:
        return CheckResult.failed(run.problem, expected=expected, evidence=evidence)
    if not run.converged:
        return CheckResult.failed(
            f"editors did not converge on all {editors * edits} edits of {run.document}",
            expected=expected,
            measured=", ".join(str(len(t)) for t in run.texts) + " chars",
            evidence=evidence,
        )
    assert run.reloaded is not None
    if run.reloaded != run.final:
        lost = run.expected_chars - len(run.reloaded)
        return CheckResult.failed(
            f"Yjs edits lost in storage: the stored {run.document} reloads with {len(run.reloaded)} of "
            f"{run.expected_chars} chars ({lost} lost)",
            measured=f"{len(run.reloaded)} chars reloaded",
            expected=expected,
            evidence=evidence,
        )
    return CheckResult.passed(
        f"{editors} editors converged on {editors * edits} edits and the stored document reloads identical",
        measured=f"{run.expected_chars} chars reloaded",
        expected=expected,
        evidence=evidence,
    )


# -- hostile inputs --------------------------------------------------------------------------------


def _write_yjs(target: Any, document: str, marker: str, address: str) -> None:
    """Write `marker` into `document` and leave once the server has echoed it (it has it)."""
    with YjsClient(target.yjs_url, document, registry=None, source_address=address) as writer:
        writer.insert(0, marker)
        writer.wait_for(lambda c: c.echoes_received >= 1, timeout=10, what="the server's echo of our edit")


def _read_yjs(target: Any, document: str, address: str, expected: str) -> str:
    """The text a newcomer to `document` loads (waiting, bounded, for `expected`: the stored
    state may arrive as an Update after the sync), or `<ErrorName>` when it cannot load it."""
    try:
        with YjsClient(target.yjs_url, document, registry=None, source_address=address) as reader:
            return reader.stored_text(expected)
    except YjsError as err:
        return f"<{type(err).__name__}>"


@check(
    "hostile-inputs-harmless",
    group=GROUP,
    symptom="hostile input crashes the target, gets a 5xx, or damages data written before",
)
def hostile_inputs_harmless(ctx: Any) -> CheckResult:
    """Blames the hostile frames for a changed Yjs document only against a control.

    The control is a second document of the same session, written and reloaded the same way at
    the same moments, that no hostile frame ever reaches. A server that loses documents anyway
    (a durability defect: no-yjs-edit-lost's business) loses the control too; then the loss is
    reported as not attributable to hostile input, never blamed on it.
    """
    target = live_inputs(ctx).require_target()
    marker = f"intact-{uuid.uuid4().hex}"
    path = "src/intact.py"
    client = fresh_user(target.api_url, "hostile")
    evidence = Evidence(("input", "answer", "expected", "ok"))
    bad: list[str] = []
    unattributable = ""
    errors = ServerErrors()  # 5xx whatever the input: the target failed, the input did no harm
    try:
        session_id = fresh_session(client)
        client.put_file_content(session_id, path, marker).raise_for_error()
        document = f"{session_id}:src/intact-yjs.py"
        control = f"{session_id}:src/control-yjs.py"  # the same write and reload, no hostile input
        address = fresh_loopback()
        _write_yjs(target, document, marker, address)
        _write_yjs(target, control, marker, address)
        for probe in send_hostile(target, client, session_id, path, document):
            evidence.add(probe.name, probe.answer, probe.expected, probe.acceptable)
            if probe.server_error:
                errors.add(probe.server_error)
            elif not probe.acceptable:
                bad.append(f"{probe.name}: {probe.answer}")
        health = RestClient(target.api_url)
        try:
            alive = health.health()
        finally:
            health.close()
        evidence.add("GET /health afterwards", alive.status, 200, alive.ok)
        stored = client.get_file_content(session_id, path)
        content = (stored.data or {}).get("content") if stored.ok and isinstance(stored.data, dict) else None
        evidence.add(
            "file content afterwards",
            f"{stored.status} " + ("intact" if content == marker else f"{content!r:.40}"),
            "200 intact",
            content == marker,
        )
        yjs_text = _read_yjs(target, document, address, marker)
        control_text = _read_yjs(target, control, address, marker)
        evidence.add(
            "Yjs document afterwards (hostile frames sent to it)",
            "intact" if yjs_text == marker else f"{yjs_text!r:.40}",
            "intact",
            yjs_text == marker,
        )
        evidence.add(
            "control Yjs document (same write and reload, no hostile input)",
            "intact" if control_text == marker else f"{control_text!r:.40}",
            "intact",
            control_text == marker,
        )
        if not alive.ok:
            bad.append(f"the API stopped answering /health ({alive.status} {alive.error_code})")
        if not errors.note(stored, "read back") and content != marker:
            bad.append(f"file content written before changed ({stored.status})")
        if yjs_text != marker and control_text == marker:
            bad.append(
                "the Yjs document written before changed or cannot be loaded after the hostile frames, "
                "while a control document written and reloaded the same way without them is intact"
            )
        elif yjs_text != marker:
            unattributable = (
                f"the Yjs document written before reloads as {yjs_text!r:.40}, and so does the control document "
                f"written and reloaded the same way without any hostile input ({control_text!r:.40}): a durability "
                "defect of the target, not attributable to hostile input (see no-yjs-edit-lost)"
            )
    finally:
        client.close()
    expected = "the contract's error or a closed socket for each input; /health 200; data intact"
    if bad:
        summary = "hostile input did harm: " + "; ".join(bad)
        if unattributable:
            summary += f" (not counted as harm: {unattributable})"
        return CheckResult.failed(summary, expected=expected, evidence=evidence)
    errors.raise_if_any("hostile input", evidence)
    if unattributable:
        return CheckResult.skipped(
            "cannot judge whether hostile frames harm Yjs data: " + unattributable + "; every input was refused "
            "or dropped, the target answers and the file content is intact",
            expected=expected,
            evidence=evidence,
        )
    return CheckResult.passed(
        "every hostile input was refused or dropped; the target answers and its data is intact (also the control)",
        expected=expected,
        evidence=evidence,
    )
