"""Sessions: create, list, read, update, soft-delete, and the REST "join" (participants).

    >>> POST   /api/sessions {name, description?, language?, visibility?} -> 201 {session}
    >>> GET    /api/sessions                 -> {sessions, total, limit, offset} (anonymous: PUBLIC only)
    >>> GET    /api/sessions/:id             -> {session} with owner and active participants
    >>> PATCH  /api/sessions/:id             -> {session}   (owner only)
    >>> DELETE /api/sessions/:id             -> soft delete (owner only)
    >>> POST   /api/sessions/:id/participants {userId, role?} -> 201 {participant}

Creating moves `codesync_sessions_active` up by one and deleting moves it down by one; the
gauge starts at the number of non-deleted sessions in storage (see app.py).
Adding a participant needs the owner or an active OWNER/EDITOR participant (twin.api.access):
whether CodeSync's own route restricts it is an open question the authorization-matrix check
asks of a real deployment; the twin enforces the rule the invitations follow.
"""

from __future__ import annotations

from aiohttp import web

from twin.api import validation
from twin.api.access import require_manager
from twin.api.common import context, ok, optional_user, read_json, require_csrf, require_user, session_for
from twin.api.errors import AuthorizationError, NotFoundError, ValidationError


async def create_session(request: web.Request) -> web.Response:
    user = await require_user(request)
    body = validation.create_session_body(await read_json(request))
    require_csrf(request)
    ctx = context(request)
    session = await ctx.store.create_session(
        user["userId"], body["name"], body["description"], body["language"], body["visibility"]
    )
    ctx.metrics.session_created()
    return ok({"session": session}, status=201)


async def list_sessions(request: web.Request) -> web.Response:
    user = await optional_user(request)
    result = await context(request).store.list_sessions(user["userId"] if user else None)
    return ok(result)


async def get_session(request: web.Request) -> web.Response:
    user = await optional_user(request)
    await session_for(request, user["userId"] if user else None)
    detail = await context(request).store.get_session_detail(request.match_info["id"])
    if detail is None:  # deleted in between
        raise NotFoundError("Session not found")
    return ok({"session": detail})


async def _owned_session(request: web.Request, user_id: str) -> dict:
    session = await context(request).store.get_session(request.match_info["id"])
    if session is None:
        raise NotFoundError("Session not found")
    if session["ownerId"] != user_id:
        raise AuthorizationError("Only the session owner can do this")
    return session


async def update_session(request: web.Request) -> web.Response:
    user = await require_user(request)
    changes = validation.update_session_body(await read_json(request))
    require_csrf(request)
    await _owned_session(request, user["userId"])
    session = await context(request).store.update_session(request.match_info["id"], changes)
    if session is None:
        raise NotFoundError("Session not found")
    return ok({"session": session})


async def delete_session(request: web.Request) -> web.Response:
    user = await require_user(request)
    require_csrf(request)
    await _owned_session(request, user["userId"])
    ctx = context(request)
    if not await ctx.store.soft_delete_session(request.match_info["id"]):
        raise NotFoundError("Session not found")
    ctx.metrics.session_deleted()
    return ok({}, message="Session deleted successfully")


async def add_participant(request: web.Request) -> web.Response:
    user = await require_user(request)
    body = validation.participant_body(await read_json(request))
    require_csrf(request)
    ctx = context(request)
    session_id = request.match_info["id"]
    session = await ctx.store.get_session(session_id)
    if session is None:
        raise NotFoundError("Session not found")
    await require_manager(request, session, user["userId"], "add participants")
    if await ctx.store.get_user(body["userId"]) is None:
        raise NotFoundError("User not found")
    existing = await ctx.store.get_participant(session_id, body["userId"])
    if existing is not None and existing["leftAt"] is None:
        raise ValidationError("User is already a participant")
    participant = await ctx.store.add_participant(session_id, body["userId"], body["role"])
    return ok({"participant": participant}, status=201)
