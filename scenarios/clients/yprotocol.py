"""y-websocket v1 frames and the awareness codec, as a client reads and writes them.

    >>> frame = encode_frame(SYNC, SYNC_UPDATE, update)
    >>> decode_frame(frame)
    Frame(kind='update', payload=b'...')
    >>> decode_state_vector(pycrdt.get_state(update))
    {1234567: 3}

Written for the client on purpose instead of sharing the twin's parser: a client and a server
that share one decoder would agree on the same mistakes. Every read is bounds-checked, and any
malformed input raises FrameError with the reason, which the Yjs client reports as
YjsProtocolError; pycrdt's own decoder trusts its input.

Wire format: lib0 varUint message type (0 sync, 1 awareness), for sync a varUint subtype
(0 SyncStep1, 1 SyncStep2, 2 Update), then a varUint-length-prefixed payload. An awareness
payload is varUint(count) then, per client, varUint(clientID) varUint(clock) varString(JSON).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

SYNC = 0
AWARENESS = 1
AUTH = 2  # y-websocket's permission message; CodeSync never sends it
SYNC_STEP1 = 0
SYNC_STEP2 = 1
SYNC_UPDATE = 2

KIND_NAMES = {SYNC_STEP1: "sync_step1", SYNC_STEP2: "sync_step2", SYNC_UPDATE: "update"}
_MAX_VARUINT_LEN = 8  # lib0 keeps numbers below 2**53


class FrameError(ValueError):
    """Bytes that are not a y-websocket v1 message; the text says what is wrong."""


class Frame(NamedTuple):
    kind: str  # "sync_step1", "sync_step2", "update" or "awareness"
    payload: bytes


def write_var_uint(value: int) -> bytes:
    """lib0 varUint: 7 bits per byte, low bits first, high bit set on all but the last byte."""
    if value < 0:
        raise ValueError("varUint must not be negative")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_var_uint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the varUint at `pos`; FrameError when cut short or too long."""
    value = 0
    for index in range(_MAX_VARUINT_LEN):
        if pos + index >= len(data):
            raise FrameError(f"varUint at byte {pos} is cut short")
        byte = data[pos + index]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return value, pos + index + 1
    raise FrameError(f"varUint at byte {pos} is longer than {_MAX_VARUINT_LEN} bytes")


def read_var_bytes(data: bytes, pos: int) -> tuple[bytes, int]:
    """(bytes, next position) of a varUint-length-prefixed byte string at `pos`."""
    length, start = read_var_uint(data, pos)
    end = start + length
    if end > len(data):
        raise FrameError(f"length {length} at byte {pos} runs past the end ({len(data) - start} bytes left)")
    return data[start:end], end


def encode_frame(message_type: int, subtype: int | None, payload: bytes) -> bytes:
    """A sync frame (message_type SYNC and a subtype) or an awareness frame (subtype None)."""
    head = write_var_uint(message_type) + (write_var_uint(subtype) if subtype is not None else b"")
    return head + write_var_uint(len(payload)) + payload


def sync_step1(state_vector: bytes) -> bytes:
    return encode_frame(SYNC, SYNC_STEP1, state_vector)


def sync_step2(update: bytes) -> bytes:
    return encode_frame(SYNC, SYNC_STEP2, update)


def update_frame(update: bytes) -> bytes:
    return encode_frame(SYNC, SYNC_UPDATE, update)


def awareness_frame(awareness_update: bytes) -> bytes:
    return encode_frame(AWARENESS, None, awareness_update)


def decode_frame(data: bytes) -> Frame:
    """Parse one binary WebSocket message; FrameError for anything but sync or awareness."""
    if not data:
        raise FrameError("empty message")
    message_type, pos = read_var_uint(data, 0)
    if message_type == SYNC:
        subtype, pos = read_var_uint(data, pos)
        if subtype not in KIND_NAMES:
            raise FrameError(f"unknown sync subtype {subtype}")
        payload, _ = read_var_bytes(data, pos)
        return Frame(KIND_NAMES[subtype], payload)
    if message_type == AWARENESS:
        payload, _ = read_var_bytes(data, pos)
        return Frame("awareness", payload)
    if message_type == AUTH:
        raise FrameError("server sent an auth (permission denied) message")
    raise FrameError(f"unknown message type {message_type}")


def decode_state_vector(data: bytes) -> dict[int, int]:
    """client id -> next clock, from an encoded state vector (pycrdt.get_state / Doc.get_state).

    A state vector is nothing but varUints, so they are read in one pass over the bytes: this
    runs on every sampled apply and every edit, where calling `read_var_uint` per number cost
    several times more (benchmarks/RESULTS.md). FrameError when malformed, as everywhere here.
    """
    numbers: list[int] = []
    append = numbers.append
    value = shift = 0
    for byte in data:
        if byte < 0x80:
            append(value | (byte << shift))
            value = shift = 0
        else:
            value |= (byte - 0x80) << shift
            shift += 7
    if shift or not numbers:
        raise FrameError("state vector is cut short")
    if max(numbers) >= 1 << (7 * _MAX_VARUINT_LEN):
        raise FrameError(f"a varUint of the state vector is longer than {_MAX_VARUINT_LEN} bytes")
    count = numbers[0]
    if len(numbers) != 1 + 2 * count:
        raise FrameError(f"state vector announces {count} clients but {len(numbers) - 1} numbers follow")
    return dict(zip(numbers[1::2], numbers[2::2], strict=True))


def update_authors(update: bytes) -> tuple[int, int | None]:
    """(number of client blocks, client id of the first block) of a Yjs v1 update.

    An update made by one transaction of one client holds exactly one block, that client's;
    a deletion-only update holds none. Reading the first header suffices to tell an echo of
    our own edit (pycrdt's get_state(update) cannot: it only reports blocks starting at clock 0).
    """
    blocks, pos = read_var_uint(update, 0)
    if blocks == 0:
        return 0, None
    _structs, pos = read_var_uint(update, pos)
    client, _ = read_var_uint(update, pos)
    return blocks, client


def update_start(update: bytes, client: int) -> int | None:
    """The first clock of `client`'s block in a v1 update, None when it has no block of theirs.

    For an update made by `client`'s own transaction (one block at most: a local edit creates
    items of one client only) this is the clock its edit starts at, the name the propagation
    registry gives the edit; only the block header is read. Several blocks: FrameError.
    """
    blocks, pos = read_var_uint(update, 0)
    if blocks != 1:
        if blocks == 0:
            return None
        raise FrameError(f"update_start reads one-client updates; this one has {blocks} blocks")
    _structs, pos = read_var_uint(update, pos)
    author, pos = read_var_uint(update, pos)
    if author != client:
        return None
    clock, _ = read_var_uint(update, pos)
    return clock


def deletion_key(update: bytes) -> tuple[tuple[int, int, int], ...] | None:
    """The delete set of a deletion-only update as sorted, merged (client, clock, length) ranges.

    None when the update also carries structs. Two encoders may write the same delete set with
    its clients in another order (Yjs sorts them, yrs need not): this key compares what was
    deleted, not how it was written, so the server's re-encoded echo still matches our send.
    """
    blocks, pos = read_var_uint(update, 0)
    if blocks:
        return None
    clients, pos = read_var_uint(update, pos)
    ranges: list[tuple[int, int, int]] = []
    for _ in range(clients):
        client, pos = read_var_uint(update, pos)
        count, pos = read_var_uint(update, pos)
        for _ in range(count):
            clock, pos = read_var_uint(update, pos)
            length, pos = read_var_uint(update, pos)
            ranges.append((client, clock, length))
    merged: list[tuple[int, int, int]] = []
    for client, clock, length in sorted(ranges):
        if merged and merged[-1][0] == client and merged[-1][1] + merged[-1][2] >= clock:
            last = merged[-1]
            merged[-1] = (client, last[1], max(last[2], clock + length - last[1]))
        else:
            merged.append((client, clock, length))
    return tuple(merged)


def encode_awareness(entries: list[tuple[int, int, dict[str, Any] | None]]) -> bytes:
    """An awareness update from (client id, clock, state or None for "gone") entries."""
    out = bytearray(write_var_uint(len(entries)))
    for client, clock, state in entries:
        text = json.dumps(state, separators=(",", ":")).encode()
        out += write_var_uint(client) + write_var_uint(clock) + write_var_uint(len(text)) + text
    return bytes(out)


def decode_awareness(data: bytes) -> list[tuple[int, int, Any]]:
    """(client id, clock, state) entries of an awareness update; state None means removed."""
    count, pos = read_var_uint(data, 0)
    entries: list[tuple[int, int, Any]] = []
    for _ in range(count):
        client, pos = read_var_uint(data, pos)
        clock, pos = read_var_uint(data, pos)
        raw, pos = read_var_bytes(data, pos)
        try:
            state = json.loads(raw) if raw else None
        except ValueError:
            raise FrameError(f"awareness state of client {client} is not JSON") from None
        entries.append((client, clock, state))
    return entries
