"""The twin's data: users, sessions, participants, files, chat and the token blacklist.

    >>> store = SqlStore(await SqliteExecutor.open(path, metrics))
    >>> await store.save_yjs_state("cabc:src/main.py", state)
    >>> user = await store.create_user("a@example.com", "Ada", password_hash)

One class for both databases: the executor hides the dialect and meters every query. Each
public method issues the queries CodeSync's Prisma calls would (named by operation and
model), and returns camelCase dicts shaped like CodeSync's JSON, never a password hash
unless the method says so.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from twin.storage.executor import Executor, StoreConflict
from twin.storage.ids import iso_after, new_id, now_iso
from twin.storage.schema import SCHEMA

__all__ = ["SqlStore", "StoreConflict", "split_document"]

SESSION_COLUMNS = "s.id, s.name, s.description, s.language, s.visibility, s.owner_id, s.created_at, s.updated_at"
LIST_LIMIT = 20


def split_document(document: str) -> tuple[str, str]:
    """`<sessionId>:<path>` split at the first ':'; a name without ':' is a session with path ""."""
    session_id, _, path = document.partition(":")
    return session_id, path


def _user(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    return {
        "id": row[f"{prefix}id"],
        "email": row[f"{prefix}email"],
        "name": row[f"{prefix}name"],
        "role": row[f"{prefix}role"],
        "createdAt": row[f"{prefix}created_at"],
    }


def _session(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "language": row["language"],
        "visibility": row["visibility"],
        "ownerId": row["owner_id"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


def _participant(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "sessionId": row["session_id"],
        "userId": row["user_id"],
        "role": row["role"],
        "joinedAt": row["joined_at"],
        "leftAt": row["left_at"],
    }


def _file(row: dict[str, Any], with_content: bool = False) -> dict[str, Any]:
    out = {
        "id": row["id"],
        "sessionId": row["session_id"],
        "name": row["name"],
        "path": row["path"],
        "type": row["type"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }
    if with_content:
        out["content"] = row["content"]
    return out


def _invitation(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "sessionId": row["session_id"],
        "email": row["email"],
        "role": row["role"],
        "token": row["token"],
        "acceptedAt": row["accepted_at"],
        "expiresAt": row["expires_at"],
        "createdAt": row["created_at"],
    }


def _message(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "sessionId": row["session_id"],
        "userId": row["user_id"],
        "content": row["content"],
        "type": row["type"],
        "replyTo": row["reply_to"],
        "createdAt": row["created_at"],
    }


class SqlStore:
    """The Store of both twin processes, over one metered executor."""

    def __init__(self, executor: Executor) -> None:
        self.ex = executor

    @property
    def dialect(self) -> str:
        return self.ex.dialect

    async def create_schema(self) -> None:
        await self.ex.ddl(SCHEMA)

    async def close(self) -> None:
        await self.ex.close()

    async def ping(self) -> None:
        """One `SELECT 1` (Prisma's `$queryRaw`), raising when the database does not answer: what a
        health route that checks its database runs (the twin's --health-checks-db)."""
        await self.ex.run("queryRaw", "", "SELECT 1", fetch="one")

    # -- Yjs documents ------------------------------------------------------------------
    async def load_yjs_state(self, document: str) -> bytes | None:
        session_id, path = split_document(document)
        row = await self.ex.run(
            "findUnique",
            "SessionFile",
            "SELECT yjs_state FROM session_files WHERE session_id = %s AND path = %s",
            (session_id, path),
            fetch="one",
        )
        if row is None or not row["yjs_state"]:
            return None
        return base64.b64decode(row["yjs_state"])

    async def save_yjs_state(self, document: str, state: bytes) -> None:
        session_id, path = split_document(document)
        now = now_iso()
        await self.ex.run(
            "upsert",
            "SessionFile",
            "INSERT INTO session_files (id, session_id, name, path, type, content, yjs_state, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, 'file', '', %s, %s, %s)"
            " ON CONFLICT (session_id, path) DO UPDATE SET yjs_state = excluded.yjs_state,"
            " updated_at = excluded.updated_at",
            (new_id(), session_id, path.rsplit("/", 1)[-1], path, base64.b64encode(state).decode("ascii"), now, now),
        )

    # -- users and tokens ---------------------------------------------------------------
    async def create_user(self, email: str, name: str, password_hash: str, role: str = "USER") -> dict[str, Any]:
        """Insert a user; StoreConflict when the e-mail is taken."""
        now = now_iso()
        row = {"id": new_id(), "email": email, "name": name, "role": role, "created_at": now}
        await self.ex.run(
            "create",
            "User",
            "INSERT INTO users (id, email, name, password_hash, role, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (row["id"], email, name, password_hash, role, now, now),
        )
        return _user(row)

    async def get_user_credentials(self, email: str) -> dict[str, Any] | None:
        """The user with its `passwordHash`, for login only."""
        row = await self.ex.run("findUnique", "User", "SELECT * FROM users WHERE email = %s", (email,), fetch="one")
        if row is None:
            return None
        return {**_user(row), "passwordHash": row["password_hash"]}

    async def email_exists(self, email: str) -> bool:
        row = await self.ex.run("findUnique", "User", "SELECT id FROM users WHERE email = %s", (email,), fetch="one")
        return row is not None

    async def get_user(self, user_id: str) -> dict[str, Any] | None:
        row = await self.ex.run(
            "findUnique",
            "User",
            "SELECT id, email, name, role, created_at FROM users WHERE id = %s",
            (user_id,),
            fetch="one",
        )
        return _user(row) if row is not None else None

    async def blacklist_token(self, jti: str, user_id: str, expires_at: str) -> None:
        await self.ex.run(
            "create",
            "TokenBlacklist",
            "INSERT INTO token_blacklist (jti, user_id, expires_at, created_at) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (jti) DO NOTHING",
            (jti, user_id, expires_at, now_iso()),
        )

    async def is_token_blacklisted(self, jti: str) -> bool:
        row = await self.ex.run(
            "findUnique", "TokenBlacklist", "SELECT jti FROM token_blacklist WHERE jti = %s", (jti,), fetch="one"
        )
        return row is not None

    # -- sessions -----------------------------------------------------------------------
    async def create_session(
        self, owner_id: str, name: str, description: str | None, language: str, visibility: str
    ) -> dict[str, Any]:
        """A session with its owner as an active OWNER participant; returns the detailed view."""
        now = now_iso()
        session_id = new_id()
        await self.ex.run(
            "create",
            "Session",
            "INSERT INTO sessions (id, name, description, language, visibility, owner_id, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (session_id, name, description, language, visibility, owner_id, now, now),
        )
        await self.ex.run(
            "create",
            "SessionParticipant",
            "INSERT INTO session_participants (id, session_id, user_id, role, joined_at) VALUES (%s, %s, %s, %s, %s)",
            (new_id(), session_id, owner_id, "OWNER", now),
        )
        detail = await self.get_session_detail(session_id)
        assert detail is not None
        return detail

    async def get_session(self, session_id: str) -> dict[str, Any] | None:
        """The session unless it is missing or soft-deleted."""
        row = await self.ex.run(
            "findUnique",
            "Session",
            f"SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.id = %s AND s.deleted_at IS NULL",
            (session_id,),
            fetch="one",
        )
        return _session(row) if row is not None else None

    async def get_session_detail(self, session_id: str) -> dict[str, Any] | None:
        """The session with its owner and its active participants (each with its user)."""
        row = await self.ex.run(
            "findUnique",
            "Session",
            f"SELECT {SESSION_COLUMNS}, u.id AS u_id, u.email AS u_email, u.name AS u_name, u.role AS u_role,"
            " u.created_at AS u_created_at FROM sessions s JOIN users u ON u.id = s.owner_id"
            " WHERE s.id = %s AND s.deleted_at IS NULL",
            (session_id,),
            fetch="one",
        )
        if row is None:
            return None
        rows = await self.ex.run(
            "findMany",
            "SessionParticipant",
            "SELECT p.*, u.id AS u_id, u.email AS u_email, u.name AS u_name, u.role AS u_role,"
            " u.created_at AS u_created_at FROM session_participants p JOIN users u ON u.id = p.user_id"
            " WHERE p.session_id = %s AND p.left_at IS NULL ORDER BY p.joined_at",
            (session_id,),
            fetch="all",
        )
        return {
            **_session(row),
            "owner": _user(row, "u_"),
            "participants": [{**_participant(p), "user": _user(p, "u_")} for p in rows],
        }

    async def list_sessions(self, user_id: str | None) -> dict[str, Any]:
        """Newest first: PUBLIC sessions, plus the caller's own and joined ones when signed in."""
        if user_id is None:
            where, params = "s.deleted_at IS NULL AND s.visibility = 'PUBLIC'", ()
        else:
            where = (
                "s.deleted_at IS NULL AND (s.visibility = 'PUBLIC' OR s.owner_id = %s OR EXISTS ("
                "SELECT 1 FROM session_participants p WHERE p.session_id = s.id AND p.user_id = %s"
                " AND p.left_at IS NULL))"
            )
            params = (user_id, user_id)
        rows = await self.ex.run(
            "findMany",
            "Session",
            f"SELECT {SESSION_COLUMNS}, u.id AS u_id, u.email AS u_email, u.name AS u_name, u.role AS u_role,"
            f" u.created_at AS u_created_at FROM sessions s JOIN users u ON u.id = s.owner_id WHERE {where}"
            f" ORDER BY s.created_at DESC, s.id DESC LIMIT {LIST_LIMIT}",
            params,
            fetch="all",
        )
        total = await self.ex.run(
            "count", "Session", f"SELECT COUNT(*) AS n FROM sessions s WHERE {where}", params, fetch="one"
        )
        return {
            "sessions": [{**_session(r), "owner": _user(r, "u_")} for r in rows],
            "total": int(total["n"]),
            "limit": LIST_LIMIT,
            "offset": 0,
        }

    async def update_session(self, session_id: str, changes: dict[str, Any]) -> dict[str, Any] | None:
        """Apply `changes` (keys name, description, language, visibility) and return the detail."""
        allowed = [key for key in ("name", "description", "language", "visibility") if key in changes]
        sets = ", ".join(f"{key} = %s" for key in [*allowed, "updated_at"])
        await self.ex.run(
            "update",
            "Session",
            f"UPDATE sessions SET {sets} WHERE id = %s AND deleted_at IS NULL",
            (*[changes[key] for key in allowed], now_iso(), session_id),
        )
        return await self.get_session_detail(session_id)

    async def soft_delete_session(self, session_id: str) -> bool:
        """Mark deleted; False when it was already gone."""
        count = await self.ex.run(
            "update",
            "Session",
            "UPDATE sessions SET deleted_at = %s WHERE id = %s AND deleted_at IS NULL",
            (now_iso(), session_id),
        )
        return bool(count)

    async def count_active_sessions(self) -> int:
        row = await self.ex.run(
            "count", "Session", "SELECT COUNT(*) AS n FROM sessions WHERE deleted_at IS NULL", (), fetch="one"
        )
        return int(row["n"])

    # -- participants -------------------------------------------------------------------
    async def can_access_session(self, session_id: str, user_id: str | None) -> bool:
        """PUBLIC, or the owner, or an active participant (left_at unset)."""
        row = await self.ex.run(
            "findFirst",
            "Session",
            "SELECT s.visibility, s.owner_id, p.id AS participant_id FROM sessions s"
            " LEFT JOIN session_participants p ON p.session_id = s.id AND p.user_id = %s AND p.left_at IS NULL"
            " WHERE s.id = %s AND s.deleted_at IS NULL",
            (user_id or "", session_id),
            fetch="one",
        )
        if row is None:
            return False
        return row["visibility"] == "PUBLIC" or (
            user_id is not None and (row["owner_id"] == user_id or row["participant_id"] is not None)
        )

    async def get_participant(self, session_id: str, user_id: str) -> dict[str, Any] | None:
        """The participant row, active or not."""
        row = await self.ex.run(
            "findUnique",
            "SessionParticipant",
            "SELECT * FROM session_participants WHERE session_id = %s AND user_id = %s",
            (session_id, user_id),
            fetch="one",
        )
        return _participant(row) if row is not None else None

    async def add_participant(self, session_id: str, user_id: str, role: str) -> dict[str, Any]:
        """Insert, or re-activate a participant who left, with `role`."""
        await self.ex.run(
            "upsert",
            "SessionParticipant",
            "INSERT INTO session_participants (id, session_id, user_id, role, joined_at) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (session_id, user_id) DO UPDATE SET left_at = NULL, role = excluded.role,"
            " joined_at = excluded.joined_at",
            (new_id(), session_id, user_id, role, now_iso()),
        )
        participant = await self.get_participant(session_id, user_id)
        assert participant is not None
        return participant

    async def active_role(self, session_id: str, user_id: str) -> str | None:
        """The role of the user's ACTIVE participant row (left_at unset), or None."""
        participant = await self.get_participant(session_id, user_id)
        if participant is None or participant["leftAt"] is not None:
            return None
        return str(participant["role"])

    async def mark_participant_left(self, session_id: str, user_id: str) -> None:
        await self.ex.run(
            "updateMany",
            "SessionParticipant",
            "UPDATE session_participants SET left_at = %s WHERE session_id = %s AND user_id = %s AND left_at IS NULL",
            (now_iso(), session_id, user_id),
        )

    # -- files --------------------------------------------------------------------------
    async def list_files(self, session_id: str) -> list[dict[str, Any]]:
        rows = await self.ex.run(
            "findMany",
            "SessionFile",
            "SELECT id, session_id, name, path, type, created_at, updated_at FROM session_files"
            " WHERE session_id = %s ORDER BY path",
            (session_id,),
            fetch="all",
        )
        return [_file(r) for r in rows]

    async def files_with_content(self, session_id: str) -> list[dict[str, Any]]:
        """Every file of the session with its text, for search."""
        rows = await self.ex.run(
            "findMany",
            "SessionFile",
            "SELECT id, session_id, name, path, type, content, created_at, updated_at FROM session_files"
            " WHERE session_id = %s AND type = 'file' ORDER BY path",
            (session_id,),
            fetch="all",
        )
        return [_file(r, with_content=True) for r in rows]

    async def create_file(self, session_id: str, name: str, file_type: str) -> dict[str, Any]:
        """A new file or folder at path `name`; StoreConflict when the path exists."""
        now = now_iso()
        row = {
            "id": new_id(),
            "session_id": session_id,
            "name": name.rsplit("/", 1)[-1],
            "path": name,
            "type": file_type,
            "created_at": now,
            "updated_at": now,
        }
        await self.ex.run(
            "create",
            "SessionFile",
            "INSERT INTO session_files (id, session_id, name, path, type, content, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, '', %s, %s)",
            (row["id"], session_id, row["name"], name, file_type, now, now),
        )
        return _file(row)

    async def get_file(self, session_id: str, path: str) -> dict[str, Any] | None:
        row = await self.ex.run(
            "findUnique",
            "SessionFile",
            "SELECT id, session_id, name, path, type, content, created_at, updated_at FROM session_files"
            " WHERE session_id = %s AND path = %s",
            (session_id, path),
            fetch="one",
        )
        return _file(row, with_content=True) if row is not None else None

    async def save_file_content(self, session_id: str, path: str, content: str) -> None:
        """Create or overwrite the file's text (the autosave)."""
        now = now_iso()
        await self.ex.run(
            "upsert",
            "SessionFile",
            "INSERT INTO session_files (id, session_id, name, path, type, content, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, 'file', %s, %s, %s)"
            " ON CONFLICT (session_id, path) DO UPDATE SET content = excluded.content,"
            " updated_at = excluded.updated_at",
            (new_id(), session_id, path.rsplit("/", 1)[-1], path, content, now, now),
        )

    # -- invitations --------------------------------------------------------------------
    async def user_id_by_email(self, email: str) -> str | None:
        row = await self.ex.run("findUnique", "User", "SELECT id FROM users WHERE email = %s", (email,), fetch="one")
        return str(row["id"]) if row is not None else None

    async def pending_invitation(self, session_id: str, email: str) -> dict[str, Any] | None:
        """The session's not accepted, not expired invitation for `email`, if any."""
        row = await self.ex.run(
            "findFirst",
            "SessionInvitation",
            "SELECT * FROM session_invitations WHERE session_id = %s AND email = %s AND accepted_at IS NULL"
            " AND expires_at > %s",
            (session_id, email, now_iso()),
            fetch="one",
        )
        return _invitation(row) if row is not None else None

    async def create_invitation(self, session_id: str, email: str, role: str, ttl_s: float) -> dict[str, Any]:
        """A pending invitation with a fresh 64-hex token, expiring `ttl_s` from now."""
        now = now_iso()
        row = {
            "id": new_id(),
            "session_id": session_id,
            "email": email,
            "role": role,
            "token": secrets.token_hex(32),
            "accepted_at": None,
            "expires_at": iso_after(ttl_s),
            "created_at": now,
        }
        await self.ex.run(
            "create",
            "SessionInvitation",
            "INSERT INTO session_invitations (id, session_id, email, role, token, expires_at, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (row["id"], session_id, email, role, row["token"], row["expires_at"], now),
        )
        return _invitation(row)

    async def get_invitation(self, *, invitation_id: str | None = None, token: str | None = None) -> dict | None:
        """The invitation by id or by token, accepted or expired ones included."""
        column, value = ("id", invitation_id) if invitation_id is not None else ("token", token)
        row = await self.ex.run(
            "findUnique",
            "SessionInvitation",
            f"SELECT * FROM session_invitations WHERE {column} = %s",
            (value,),
            fetch="one",
        )
        return _invitation(row) if row is not None else None

    async def list_pending_invitations(self, session_id: str) -> list[dict[str, Any]]:
        """The session's pending invitations, newest first."""
        rows = await self.ex.run(
            "findMany",
            "SessionInvitation",
            "SELECT * FROM session_invitations WHERE session_id = %s AND accepted_at IS NULL AND expires_at > %s"
            " ORDER BY created_at DESC, id DESC",
            (session_id, now_iso()),
            fetch="all",
        )
        return [_invitation(r) for r in rows]

    async def accept_invitation(self, invitation: dict[str, Any], user_id: str) -> dict[str, Any]:
        """Mark accepted, then make the user an ACTIVE participant with the invitation's role."""
        await self.ex.run(
            "update",
            "SessionInvitation",
            "UPDATE session_invitations SET accepted_at = %s WHERE id = %s",
            (now_iso(), invitation["id"]),
        )
        return await self.add_participant(invitation["sessionId"], user_id, invitation["role"])

    async def delete_invitation(self, invitation_id: str) -> bool:
        count = await self.ex.run(
            "delete", "SessionInvitation", "DELETE FROM session_invitations WHERE id = %s", (invitation_id,)
        )
        return bool(count)

    # -- chat ---------------------------------------------------------------------------
    async def add_chat_message(
        self, session_id: str, user_id: str, content: str, msg_type: str = "TEXT", reply_to: str | None = None
    ) -> dict[str, Any]:
        row = {
            "id": new_id(),
            "session_id": session_id,
            "user_id": user_id,
            "content": content,
            "type": msg_type,
            "reply_to": reply_to,
            "created_at": now_iso(),
        }
        await self.ex.run(
            "create",
            "ChatMessage",
            "INSERT INTO chat_messages (id, session_id, user_id, content, type, reply_to, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (row["id"], session_id, user_id, content, msg_type, reply_to, row["created_at"]),
        )
        return _message(row)

    async def get_chat_message(self, message_id: str) -> dict[str, Any] | None:
        row = await self.ex.run(
            "findUnique", "ChatMessage", "SELECT * FROM chat_messages WHERE id = %s", (message_id,), fetch="one"
        )
        return _message(row) if row is not None else None
