"""Invitations: how CodeSync adds a collaborator to a session.

    >>> POST   /api/invitations {sessionId, email, role?}  -> 201 {invitation: {id, token, ...}}
    >>> GET    /api/invitations/verify/:token             -> {invitation} (public, no login)
    >>> GET    /api/invitations/session/:id               -> {invitations} (pending ones)
    >>> POST   /api/invitations/accept/:token {}           -> {success, participant, session}
    >>> DELETE /api/invitations/:id                       -> revoked

The rules are the backend's invitation service's: the owner or an active OWNER/EDITOR
participant invites (403 otherwise; role defaults to VIEWER); the token lives 7 days; a
second pending invitation for the same e-mail, or one for a user who is already an active
participant, is a 400 VALIDATION_ERROR (the backend raises ValidationError there, not a
409); listing needs the owner or any active participant. Accepting needs the logged-in user
whose e-mail the invitation names (403 for anyone else; a caller without a login gets
`requiresAuth`), marks the invitation accepted and makes the user an ACTIVE participant with
the invitation's role, re-activating the row a Socket.IO disconnect closed. A used or
expired token is a 400, an unknown one a 404. Revoking deletes the invitation (owner or
active OWNER/EDITOR participant). Every query is metered as model SessionInvitation.
"""

from __future__ import annotations

from aiohttp import web

from twin.api import validation
from twin.api.access import require_manager, role_in
from twin.api.common import context, ok, optional_user, read_json, require_csrf, require_user
from twin.api.errors import AuthorizationError, NotFoundError, ValidationError
from twin.storage.ids import now_iso  # stored timestamps share its format and compare as strings

INVITATION_TTL_S = 7 * 24 * 3600.0


async def create_invitation(request: web.Request) -> web.Response:
    user = await require_user(request)
    body = validation.invitation_body(await read_json(request))
    require_csrf(request)
    store = context(request).store
    session = await store.get_session(body["sessionId"])
    if session is None:
        raise NotFoundError("Session not found")
    await require_manager(request, session, user["userId"], "invite users")
    invitee = await store.user_id_by_email(body["email"])
    if invitee is not None and await store.active_role(session["id"], invitee) is not None:
        raise ValidationError("User is already a participant in this session")
    if await store.pending_invitation(session["id"], body["email"]) is not None:
        raise ValidationError("An invitation has already been sent to this email")
    invitation = await store.create_invitation(session["id"], body["email"], body["role"], INVITATION_TTL_S)
    brief = {"id": session["id"], "name": session["name"], "description": session["description"]}
    return ok({"invitation": {**invitation, "session": brief}}, status=201)


async def _usable(request: web.Request, token: str) -> dict:
    """The invitation of `token`: 404 when unknown, 400 when accepted or expired."""
    invitation = await context(request).store.get_invitation(token=token)
    if invitation is None:
        raise NotFoundError("Invitation not found")
    if invitation["acceptedAt"] is not None:
        raise ValidationError("Invitation has already been accepted")
    if invitation["expiresAt"] < now_iso():
        raise ValidationError("Invitation has expired")
    return invitation


async def verify_invitation(request: web.Request) -> web.Response:
    invitation = await _usable(request, request.match_info["token"])
    store = context(request).store
    detail = await store.get_session_detail(invitation["sessionId"])
    session = None
    if detail is not None:
        session = {
            "id": detail["id"],
            "name": detail["name"],
            "description": detail["description"],
            "language": detail["language"],
            "owner": {"name": detail["owner"]["name"]},
        }
    return ok({"invitation": {**invitation, "session": session}})


async def list_invitations(request: web.Request) -> web.Response:
    user = await require_user(request)
    store = context(request).store
    session = await store.get_session(request.match_info["id"])
    if session is None:
        raise NotFoundError("Session not found")
    if await role_in(request, session, user["userId"]) is None:
        raise AuthorizationError("Not authorized to view invitations")
    return ok({"invitations": await store.list_pending_invitations(session["id"])})


async def accept_invitation(request: web.Request) -> web.Response:
    user = await optional_user(request)
    email = validation.accept_body(await read_json(request))
    require_csrf(request)
    token = request.match_info["token"]
    invitation = await _usable(request, token)
    if email is not None and email != invitation["email"]:
        raise ValidationError("Invitation email does not match")
    store = context(request).store
    session = await store.get_session(invitation["sessionId"])
    if user is None:
        name = session["name"] if session else None
        return ok({"requiresAuth": True, "email": invitation["email"], "sessionName": name, "token": token})
    account = await store.get_user(user["userId"])
    if account is None or account["email"] != invitation["email"]:
        raise AuthorizationError("Invitation is for a different email address")
    participant = await store.accept_invitation(invitation, user["userId"])
    return ok({"success": True, "participant": participant, "session": session})


async def revoke_invitation(request: web.Request) -> web.Response:
    user = await require_user(request)
    require_csrf(request)
    store = context(request).store
    invitation = await store.get_invitation(invitation_id=request.match_info["id"])
    if invitation is None:
        raise NotFoundError("Invitation not found")
    session = await store.get_session(invitation["sessionId"])
    if session is None:
        raise NotFoundError("Session not found")
    await require_manager(request, session, user["userId"], "revoke invitations")
    if not await store.delete_invitation(invitation["id"]):
        raise NotFoundError("Invitation not found")
    return ok({}, message="Invitation revoked successfully")
