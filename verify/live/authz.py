"""The authorization matrix: every state-changing route tried by someone who may not use it.

    >>> run = probe_matrix(target)          # three fresh users, two fresh sessions
    >>> [(p.who, p.what, p.result.status) for p in run.probes][:2]
    [('stranger', 'write file content', 403), ('stranger', 'create a file', 403)]
    >>> run.after                            # what the owner reads back afterwards
    [('session name', 'authz original', 'authz original'), ...]

Actors, all fresh (so nothing here touches a load run's users, limits or sessions): the
OWNER of a PUBLIC session (one file, one pending invitation for a third e-mail) and of a
PRIVATE one (one file); a STRANGER, signed in, neither owner nor participant; a VIEWER,
invited as VIEWER and accepted (the product's way in). The stranger tries every
state-changing route of the PUBLIC session (file writes and creation, invitations,
participants, the session's PATCH and DELETE, in that order so that a route that wrongly
lets it in comes last among those it could affect) and reads the PRIVATE one; the viewer
tries to write, to invite and to raise its own role. Then the owner reads back what each
refusal must have left unchanged: the session's name, the file's content, the file list,
the participants and their roles, the pending invitation.

The contract leaves open who may call POST /api/sessions/:id/participants on the real
CodeSync: the matrix asks it like every other route and reports what it finds.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from scenarios.clients.rest import (
    FILE_CONTENT,
    FILES,
    INVITATION,
    INVITATION_ACCEPT,
    INVITATIONS,
    PARTICIPANTS,
    SEARCH,
    SESSION,
    SESSION_INVITATIONS,
    ApiResult,
    RestClient,
)
from verify.live.actors import fresh_email, fresh_session, fresh_user, user_id
from verify.live.inputs import LiveTarget

FILE = "src/authz.py"
NAME = "authz original"
# Reads of a PRIVATE session: "not found" hides it as well as "forbidden" does.
UNREADABLE = (403, 404)


@dataclass(frozen=True)
class Probe:
    """One attempt: who tried what on which route, and the answer."""

    who: str
    what: str
    result: ApiResult
    read: bool = False  # a read of the PRIVATE session (403 or 404 both keep it unreadable)

    @property
    def route(self) -> str:
        return f"{self.result.method} {self.result.route}"

    @property
    def allowed(self) -> bool:
        return self.result.ok

    @property
    def refused_as_expected(self) -> bool:
        return self.result.status in (UNREADABLE if self.read else (403,))

    @property
    def expected(self) -> str:
        return "403 or 404" if self.read else "403"


@dataclass
class MatrixRun:
    """The probes in order and the owner's read-back: (what, found, expected) rows."""

    probes: list[Probe] = field(default_factory=list)
    after: list[tuple[str, Any, Any]] = field(default_factory=list)
    after_results: list[ApiResult] = field(default_factory=list)

    def changed(self) -> list[str]:
        return [
            f"{what} is now {found!r} (was {expected!r})" for what, found, expected in self.after if found != expected
        ]


def entity(result: ApiResult, key: str) -> dict[str, Any]:
    """The object under `key` of an answer ({"invitation": {...}} -> {...}), else the answer itself."""
    data = result.data
    if isinstance(data, dict) and isinstance(data.get(key), dict):
        return data[key]
    return data if isinstance(data, dict) else {}


def _setup(owner: RestClient, viewer: RestClient, victim: str) -> tuple[str, str, dict[str, Any]]:
    """The owner's PUBLIC and PRIVATE sessions with their files, the viewer invited and accepted,
    and a pending invitation for `victim`'s e-mail (nobody but its invitee may use it)."""
    public = fresh_session(owner, name=NAME)
    private = fresh_session(owner, name=NAME, visibility="PRIVATE")
    for session_id in (public, private):
        owner.create_file(session_id, FILE).raise_for_error()
        owner.put_file_content(session_id, FILE, f"{NAME} {session_id}").raise_for_error()
    viewer_email = (viewer.user or {}).get("email")
    made = owner.invite(public, str(viewer_email), "VIEWER").raise_for_error()
    viewer.accept_invitation(str(entity(made, "invitation").get("token"))).raise_for_error()
    pending = entity(owner.invite(public, victim, "EDITOR").raise_for_error(), "invitation")
    return public, private, pending


def probe_matrix(target: LiveTarget) -> MatrixRun:
    """Run every probe and the read-back; setup failures raise (ApiError, TargetFault)."""
    owner = fresh_user(target.api_url, "authz-owner")
    stranger = fresh_user(target.api_url, "authz-stranger")
    viewer = fresh_user(target.api_url, "authz-viewer")
    victim = fresh_email("authz-victim")
    run = MatrixRun()
    try:
        public, private, pending = _setup(owner, viewer, victim)
        me, viewer_id = user_id(stranger), user_id(viewer)
        token, invitation_id = str(pending.get("token")), str(pending.get("id"))
        content = RestClient.file_content_path(public, FILE)
        sid = public

        def probe(who: RestClient, label: str, what: str, method: str, path: str, route: str, body: Any) -> None:
            run.probes.append(Probe(label, what, who.call(method, path, route, body)))

        forged = f"forged {uuid.uuid4().hex[:8]}"
        probe(stranger, "stranger", "write file content", "PUT", content, FILE_CONTENT, {"content": forged})
        probe(stranger, "stranger", "create a file", "POST", f"/api/sessions/{sid}/files", FILES, {"name": "x.py"})
        probe(
            stranger,
            "stranger",
            "invite itself as EDITOR",
            "POST",
            "/api/invitations",
            INVITATIONS,
            {"sessionId": sid, "email": (stranger.user or {}).get("email"), "role": "EDITOR"},
        )
        probe(
            stranger,
            "stranger",
            "accept another's invitation",
            "POST",
            f"/api/invitations/accept/{token}",
            INVITATION_ACCEPT,
            {},
        )
        probe(
            stranger,
            "stranger",
            "list the invitations (their tokens)",
            "GET",
            f"/api/invitations/session/{sid}",
            SESSION_INVITATIONS,
            None,
        )
        probe(
            stranger,
            "stranger",
            "revoke an invitation",
            "DELETE",
            f"/api/invitations/{invitation_id}",
            INVITATION,
            None,
        )
        for role in ("EDITOR", "OWNER"):
            probe(
                stranger,
                "stranger",
                f"add itself as {role}",
                "POST",
                f"/api/sessions/{sid}/participants",
                PARTICIPANTS,
                {"userId": me, "role": role},
            )
        probe(stranger, "stranger", "rename the session", "PATCH", f"/api/sessions/{sid}", SESSION, {"name": forged})
        probe(stranger, "stranger", "delete the session", "DELETE", f"/api/sessions/{sid}", SESSION, None)

        for what, method, path, route, body in (
            ("read the PRIVATE session", "GET", f"/api/sessions/{private}", SESSION, None),
            ("list the PRIVATE session's files", "GET", f"/api/sessions/{private}/files", FILES, None),
            ("read a PRIVATE file", "GET", RestClient.file_content_path(private, FILE), FILE_CONTENT, None),
            ("search the PRIVATE session", "POST", f"/api/sessions/{private}/search", SEARCH, {"query": NAME}),
        ):
            run.probes.append(Probe("stranger", what, stranger.call(method, path, route, body), read=True))

        probe(viewer, "viewer", "write file content", "PUT", content, FILE_CONTENT, {"content": forged})
        probe(
            viewer,
            "viewer",
            "invite someone as EDITOR",
            "POST",
            "/api/invitations",
            INVITATIONS,
            {"sessionId": sid, "email": fresh_email("authz-friend"), "role": "EDITOR"},
        )
        probe(
            viewer,
            "viewer",
            "raise its own role to EDITOR",
            "POST",
            f"/api/sessions/{sid}/participants",
            PARTICIPANTS,
            {"userId": viewer_id, "role": "EDITOR"},
        )

        _read_back(run, owner, public, private, pending, {user_id(owner): "OWNER", viewer_id: "VIEWER"})
    finally:
        for client in (owner, stranger, viewer):
            client.close()
    return run


def _read_back(
    run: MatrixRun, owner: RestClient, public: str, private: str, pending: dict[str, Any], members: dict[str, str]
) -> None:
    """What every refusal must have left as it was, read by the owner."""
    session = owner.get_session(public)
    detail = entity(session, "session") if session.ok else {}
    roles = {
        str(p.get("userId")): p.get("role")
        for p in detail.get("participants") or []
        if isinstance(p, dict) and p.get("leftAt") is None
    }
    owner_id = next(iter(members))
    roles.setdefault(owner_id, "OWNER")  # an owner is the owner with or without its row
    files = owner.list_files(public)
    paths = sorted(str(f.get("path")) for f in (files.data or {}).get("files", []) if isinstance(f, dict))
    contents = {
        where: owner.get_file_content(session_id, FILE)
        for where, session_id in (("PUBLIC", public), ("PRIVATE", private))
    }
    invitations = owner.list_invitations(public)
    listed = (invitations.data or {}).get("invitations", []) if invitations.ok else []
    pending_now = sorted(
        (str(i.get("email")), i.get("acceptedAt"))
        for i in listed
        if isinstance(i, dict) and i.get("id") == pending.get("id")
    )
    others = sorted(str(i.get("email")) for i in listed if isinstance(i, dict) and i.get("id") != pending.get("id"))
    run.after_results = [session, files, *contents.values(), invitations]
    run.after += [
        ("session", f"{session.status} {detail.get('name')!r}", f"200 {NAME!r}"),
        ("active participants and roles", roles, members),
        ("files", paths, [FILE]),
    ]
    for where, session_id in (("PUBLIC", public), ("PRIVATE", private)):
        read = contents[where]
        text = (read.data or {}).get("content") if read.ok and isinstance(read.data, dict) else None
        run.after.append((f"{where} file content", f"{read.status} {text!r}", f"200 {f'{NAME} {session_id}'!r}"))
    run.after += [
        ("the pending invitation", pending_now, [(str(pending.get("email")), None)]),
        ("other pending invitations", others, []),
    ]
