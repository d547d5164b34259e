"""The editing and awareness API both Yjs clients share: one definition, two transports.

    class YjsClient(TextEdits):
        def _edit(self, change): ...          # apply via EditTracker.local_edit, send one Update
        def _set_awareness(self, state): ...  # encode and send our awareness state

    >>> client.insert(0, "x"); client.replace(0, 1, "y"); client.delete(0)
    >>> client.set_cursor(3, 1)              # keeps the last edit announcement

Why one class: `YjsClient` (threads, websockets.sync) and `LeanYjsConnection` (gevent, raw
socket) differ in how a frame is sent and under which lock, never in what an edit is, what an
awareness state holds or how latency samples are kept. If those lived twice, the two clients
could record different ledgers for the same user script. Each client supplies `_edit`,
`_set_awareness` and `_cursor_user`; the rest is here. `__slots__ = ()` keeps the lean
connection slotted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any


def announced(state: dict[str, Any] | None, user: dict[str, Any], start: int, sent_wall: float) -> dict[str, Any]:
    """Our awareness state (or `{"user": user}` if none yet) carrying `edit: {clock, sentAt}`.

    The announcement lets a receiver in another process pair this edit with its applied
    range (propagation.AnnouncedEdits); `sent_wall` is propagation.wall_clock() at the send.
    """
    return {**(state or {"user": user}), "edit": {"clock": start, "sentAt": sent_wall}}


# How long a reader waits for a document's stored state after its sync (see `stored_text`).
STORED_STATE_WAIT_S = 5.0


class TextEdits:
    """insert/delete/replace, set_cursor and sample keeping for a client with a `ytext`."""

    __slots__ = ()

    def stored_text(self, expected: str, timeout: float = STORED_STATE_WAIT_S) -> str:
        """The text once it equals `expected`, or as it is after `timeout` s.

        Why: CodeSync loads a document's stored state asynchronously, so a reader that synced
        first receives it afterwards as an ordinary Update; reading right after the sync would
        report a stored document as lost. A reader failure is raised, not waited out.
        """
        with contextlib.suppress(TimeoutError):  # YjsTimeout: the text stayed otherwise; the caller judges it
            self.wait_for(lambda c: c.text() == expected, timeout, "the stored state")  # type: ignore[attr-defined]
        return self.text()  # type: ignore[attr-defined]

    ytext: Any
    latencies: list[float]
    latency_count: int
    keep_samples: int
    _awareness_state: dict[str, Any] | None

    def _edit(self, change: Callable[[], None]) -> int | None:
        raise NotImplementedError

    def _set_awareness(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def _cursor_user(self, file: str | None) -> dict[str, Any]:
        raise NotImplementedError

    def raise_if_failed(self) -> None:
        raise NotImplementedError

    def insert(self, index: int, text: str) -> int | None:
        """Insert `text` at `index` of the shared text; one Update frame made of exactly this change, sampled."""
        return self._edit(lambda: self.ytext.insert(index, text))

    def delete(self, index: int, length: int = 1) -> None:
        """Delete `length` characters at `index`; one Update frame, no latency sample (no new item)."""
        self._edit(lambda: self.ytext.__delitem__(slice(index, index + length)))

    def replace(self, index: int, length: int, text: str) -> int | None:
        """Delete and insert in one Update, as typing over a selection does; sampled."""

        def change() -> None:
            del self.ytext[index : index + length]
            self.ytext.insert(index, text)

        return self._edit(change)

    def set_cursor(self, line: int, column: int, file: str | None = None) -> None:
        """Publish our cursor in the browser's awareness shape; the last edit announcement stays."""
        self.raise_if_failed()
        state: dict[str, Any] = {"user": self._cursor_user(file), "cursor": {"line": line, "column": column}}
        if self._awareness_state and "edit" in self._awareness_state:
            state["edit"] = self._awareness_state["edit"]
        self._set_awareness(state)

    def _keep(self, samples: list[float]) -> None:
        """Count every latency sample; keep the first `keep_samples` of them."""
        self.latency_count += len(samples)
        room = self.keep_samples - len(self.latencies)
        if room > 0:
            self.latencies.extend(samples[:room])
