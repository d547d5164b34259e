"""Who may change a session: CodeSync's participant rules, in one place for every route.

    >>> await require_writer(request, session, user_id)    # 403 unless owner or active EDITOR/OWNER row
    >>> await require_manager(request, session, user_id)   # invitations and participants: the same rule

CodeSync lets a user write files (content PUT, file creation) only as the session's owner or
with an ACTIVE participant row (left_at unset) whose role may edit, whatever the session's
visibility. A Socket.IO `session:join` creates no row and a Socket.IO disconnect sets left_at,
so a collaborator becomes (again) a participant only by an invitation accepted, or by the
participants route. Inviting, revoking and adding participants need the owner or an active
OWNER/EDITOR row. The `authz-open` fault turns both gates off (anyone signed in passes), as
a server whose checks were dropped would.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from twin.api.common import context
from twin.api.errors import AuthorizationError

AUTHZ_OPEN = "authz-open"
WRITER_ROLES = ("OWNER", "EDITOR")


async def role_in(request: web.Request, session: dict[str, Any], user_id: str) -> str | None:
    """ "OWNER" for the session's owner, else the role of the user's active row, else None."""
    if session["ownerId"] == user_id:
        return "OWNER"
    return await context(request).store.active_role(session["id"], user_id)


def _gates_open(request: web.Request) -> bool:
    return context(request).config.faults.active(AUTHZ_OPEN)


async def require_writer(request: web.Request, session: dict[str, Any], user_id: str) -> None:
    """403 FORBIDDEN unless the caller owns the session or is an active OWNER/EDITOR participant."""
    if _gates_open(request):
        return
    role = await role_in(request, session, user_id)
    if role is None:
        raise AuthorizationError("You must be a participant of this session to edit its files")
    if role not in WRITER_ROLES:
        raise AuthorizationError("Your role in this session cannot edit files")


async def require_manager(request: web.Request, session: dict[str, Any], user_id: str, what: str) -> None:
    """403 FORBIDDEN unless the caller owns the session or is an active OWNER/EDITOR participant."""
    if _gates_open(request):
        return
    if await role_in(request, session, user_id) not in WRITER_ROLES:
        raise AuthorizationError(f"Only the session owner or editors can {what}")
