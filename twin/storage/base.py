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
