"""The y-websocket v1 wire format: lib0 varUint framing, parsed strictly, built cheaply.

    >>> frame = update_message(b"\\x00\\x00")
    >>> parse_frame(frame)
    Message(kind=2, payload=b'\\x00\\x00')

A frame is `varUint(type)`, and for type 0 (sync) `varUint(subtype)`, then a
`varUint(length)`-prefixed payload. pycrdt's own Decoder trusts its input (a truncated varint
is an IndexError, a short payload is silently cut), and a server must tell garbage from a
message before it touches a document, so the reader here checks every bound and raises
ProtocolError, which the server answers by closing that one socket.
"""

from __future__ import annotations

from typing import NamedTuple

from pycrdt import YMessageType, YSyncMessageType, write_var_uint

# Message kinds after parsing: the three sync subtypes keep their wire values, awareness is 10.
SYNC_STEP1 = int(YSyncMessageType.SYNC_STEP1)
SYNC_STEP2 = int(YSyncMessageType.SYNC_STEP2)
SYNC_UPDATE = int(YSyncMessageType.SYNC_UPDATE)
AWARENESS = 10

# An empty Yjs v1 update (no structs, empty delete set): what a fresh client's SyncStep2 holds.
EMPTY_UPDATE = b"\x00\x00"

_SYNC_PREFIX = {sub: bytes((YMessageType.SYNC, sub)) for sub in (SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE)}
_AWARENESS_PREFIX = bytes((YMessageType.AWARENESS,))
_MAX_VARUINT_BYTES = 8  # lib0 numbers stay below 2**53; 8 groups of 7 bits are plenty


class ProtocolError(ValueError):
    """A frame that is not a y-websocket v1 message; the text says what was wrong."""


class Message(NamedTuple):
    kind: int  # SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE or AWARENESS
    payload: bytes


def read_var_uint(data: bytes, pos: int) -> tuple[int, int]:
    """Decode one lib0 varUint at `pos`; returns (value, next position)."""
    value = 0
    shift = 0
    end = min(len(data), pos + _MAX_VARUINT_BYTES)
    while pos < end:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    if pos >= len(data):
        raise ProtocolError("truncated varUint")
    raise ProtocolError("varUint longer than 8 bytes")


def read_var_bytes(data: bytes, pos: int) -> tuple[bytes, int]:
    """Decode a varUint length and that many bytes at `pos`; returns (bytes, next position)."""
    length, pos = read_var_uint(data, pos)
    end = pos + length
    if end > len(data):
        raise ProtocolError(f"payload announces {length} bytes but {len(data) - pos} follow")
    return data[pos:end], end


def read_var_string(data: bytes, pos: int) -> tuple[str, int]:
    """Decode a varUint-prefixed UTF-8 string at `pos`."""
    raw, pos = read_var_bytes(data, pos)
    try:
        return raw.decode("utf-8"), pos
    except UnicodeDecodeError:
        raise ProtocolError("string is not UTF-8") from None


def parse_frame(data: bytes) -> Message:
    """Split one binary frame into its kind and payload, or raise ProtocolError.

    Bytes after the payload are ignored, as lib0's decoder ignores them.
    """
    if not data:
        raise ProtocolError("empty frame")
    msg_type, pos = read_var_uint(data, 0)
    if msg_type == YMessageType.SYNC:
        sub, pos = read_var_uint(data, pos)
        if sub not in _SYNC_PREFIX:
            raise ProtocolError(f"unknown sync message type {sub}")
        payload, _ = read_var_bytes(data, pos)
        return Message(sub, payload)
    if msg_type == YMessageType.AWARENESS:
        payload, _ = read_var_bytes(data, pos)
        return Message(AWARENESS, payload)
    raise ProtocolError(f"unknown message type {msg_type}")


def sync_message(sub: int, payload: bytes) -> bytes:
    """A sync frame of subtype `sub` (SYNC_STEP1 state vector, SYNC_STEP2 or SYNC_UPDATE update)."""
    return _SYNC_PREFIX[sub] + write_var_uint(len(payload)) + payload


def sync_step1_message(state_vector: bytes) -> bytes:
    return sync_message(SYNC_STEP1, state_vector)


def sync_step2_message(update: bytes) -> bytes:
    return sync_message(SYNC_STEP2, update)


def update_message(update: bytes) -> bytes:
    return sync_message(SYNC_UPDATE, update)


def awareness_message(awareness_update: bytes) -> bytes:
    """An awareness frame around an encoded awareness update (see twin.yjs.awareness)."""
    return _AWARENESS_PREFIX + write_var_uint(len(awareness_update)) + awareness_update
