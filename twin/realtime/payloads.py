"""Turn what a Socket.IO client emitted into checked values, or one error message.

    >>> session_id_arg(("ckx1session",))
    'ckx1session'
    >>> chat_send(({"sessionId": "ckx1session", "content": "hi"},))
    ChatSend(session_id='ckx1session', content='hi', msg_type='TEXT', reply_to=None)
    >>> chat_send(({"sessionId": 7},))
    Traceback (most recent call last):
    PayloadError: sessionId must be a non-empty string of at most 128 characters

Handlers receive the raw argument tuple (a client may emit nothing, None, a number, a
megabyte string); every check lives here so a handler either gets a well-formed value or
answers the sender with the PayloadError's message as an `error` event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_ID_CHARS = 128
MAX_CONTENT_CHARS = 5000
MAX_EMOJI_CHARS = 32
MAX_POSITION = 10_000_000
MESSAGE_TYPES = ("TEXT", "CODE", "SYSTEM", "FILE")


class PayloadError(ValueError):
    """A malformed payload; the message is what the sender sees in its `error` event."""


@dataclass(frozen=True)
class ChatSend:
    session_id: str
    content: str
    msg_type: str
    reply_to: str | None


@dataclass(frozen=True)
class Reaction:
    message_id: str
    emoji: str


@dataclass(frozen=True)
class CursorUpdate:
    session_id: str
    line: int
    column: int


def _first(args: tuple[Any, ...]) -> Any:
    return args[0] if args else None


def _identifier(value: Any, field: str) -> str:
    if isinstance(value, str) and 0 < len(value) <= MAX_ID_CHARS:
        return value
    raise PayloadError(f"{field} must be a non-empty string of at most {MAX_ID_CHARS} characters")


def _object(args: tuple[Any, ...], shape: str) -> dict[str, Any]:
    value = _first(args)
    if not isinstance(value, dict):
        raise PayloadError(f"payload must be an object {shape}")
    return value


def session_id_arg(args: tuple[Any, ...]) -> str:
    """`session:join`, `session:leave`, `typing:*`: the payload is the session id itself.

    An object `{sessionId}` is accepted too, since clients written from the REST side
    tend to send one.
    """
    value = _first(args)
    if isinstance(value, dict):
        value = value.get("sessionId")
    return _identifier(value, "sessionId")


def chat_send(args: tuple[Any, ...]) -> ChatSend:
    """`chat:message:send` {sessionId, content (1-5000 chars), type?, replyTo?}."""
    data = _object(args, "{sessionId, content, type?, replyTo?}")
    session_id = _identifier(data.get("sessionId"), "sessionId")
    content = data.get("content")
    if not isinstance(content, str) or not 1 <= len(content) <= MAX_CONTENT_CHARS:
        raise PayloadError(f"content must be a string of 1-{MAX_CONTENT_CHARS} characters")
    msg_type = data.get("type")
    if msg_type is None:
        msg_type = "TEXT"
    if msg_type not in MESSAGE_TYPES:
        raise PayloadError(f"type must be one of {', '.join(MESSAGE_TYPES)}")
    reply_to = data.get("replyTo")
    if reply_to is not None:
        reply_to = _identifier(reply_to, "replyTo")
    return ChatSend(session_id, content, msg_type, reply_to)


def reaction(args: tuple[Any, ...]) -> Reaction:
    """`chat:message:react` {messageId, emoji}."""
    data = _object(args, "{messageId, emoji}")
    message_id = _identifier(data.get("messageId"), "messageId")
    emoji = data.get("emoji")
    if not isinstance(emoji, str) or not 1 <= len(emoji) <= MAX_EMOJI_CHARS:
        raise PayloadError(f"emoji must be a string of 1-{MAX_EMOJI_CHARS} characters")
    return Reaction(message_id, emoji)


def cursor_update(args: tuple[Any, ...]) -> CursorUpdate:
    """`cursor:update` {sessionId, line, column}: non-negative integers (not booleans)."""
    data = _object(args, "{sessionId, line, column}")
    session_id = _identifier(data.get("sessionId"), "sessionId")
    position = []
    for field in ("line", "column"):
        value = data.get(field)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_POSITION:
            raise PayloadError(f"{field} must be an integer from 0 to {MAX_POSITION}")
        position.append(value)
    return CursorUpdate(session_id, position[0], position[1])
