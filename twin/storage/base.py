"""The storage interface both twin processes use; SQLite and PostgreSQL implement it.

Every query goes through the implementation's metered executor, so each one moves
`codesync_db_queries_total` and `codesync_db_query_duration_seconds` of the process that
issued it. The API-side methods (users, sessions, files, chat) are added by the API
implementation; the Yjs methods below are what the Yjs server relies on.
"""

from __future__ import annotations

from typing import Protocol


class Store(Protocol):
    async def close(self) -> None:
        """Release connections; must not lose anything already acknowledged."""

    async def load_yjs_state(self, document: str) -> bytes | None:
        """The stored full Yjs state of `document` (`<sessionId>:<path>`), or None."""

    async def save_yjs_state(self, document: str, state: bytes) -> None:
        """Replace the stored full Yjs state of `document` (kept base64 in session_files.yjs_state)."""

    # -- what the Socket.IO server uses (implemented by twin.storage.sql.SqlStore) ----------
    async def get_session(self, session_id: str) -> dict | None:
        """The non-deleted session {id, name, description, language, visibility, ownerId, createdAt, updatedAt}."""

    async def can_access_session(self, session_id: str, user_id: str | None) -> bool:
        """True for a PUBLIC session, its owner, or an active participant (left_at unset)."""

    async def mark_participant_left(self, session_id: str, user_id: str) -> None:
        """Set left_at on the participant's active row."""

    async def add_chat_message(
        self, session_id: str, user_id: str, content: str, msg_type: str = "TEXT", reply_to: str | None = None
    ) -> dict:
        """Store a message; returns {id, sessionId, userId, content, type, replyTo, createdAt}."""

    async def get_chat_message(self, message_id: str) -> dict | None:
        """The stored message in the same shape, or None."""

    async def get_user(self, user_id: str) -> dict | None:
        """{id, email, name, role, createdAt}; never the password hash."""

    async def is_token_blacklisted(self, jti: str) -> bool:
        """True once the token with this jti was logged out."""
