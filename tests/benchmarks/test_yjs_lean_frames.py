"""RFC 6455 framing of the lean Yjs connection: what it writes and how it cuts what it reads.

Bytes in, bytes out, no socket: the live behaviour (handshake, sync, echoes, pings, 1008)
is covered by test_yjs_lean_live.py and by the benchmark's quick run.
"""

from __future__ import annotations

import pytest

from scenarios.clients.yjs_lean import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    FrameReader,
    WsFrameError,
    client_frame,
    mask_payload,
)


def server_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """An unmasked server frame, written out by hand from the RFC's layout."""
    size = len(payload)
    first = (0x80 if fin else 0) | opcode
    if size < 126:
        return bytes((first, size)) + payload
    if size < 65536:
        return bytes((first, 126)) + size.to_bytes(2, "big") + payload
    return bytes((first, 127)) + size.to_bytes(8, "big") + payload


def test_rfc_example_masked_hello() -> None:
    # RFC 6455 section 5.7: "Hello" masked with 37 fa 21 3d
    frame = client_frame(0x1, b"Hello", mask=bytes.fromhex("37fa213d"))
    assert frame == bytes.fromhex("818537fa213d7f9f4d5158")


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536])
def test_client_frame_length_forms_and_mask_round_trip(size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    mask = b"\x01\x02\x03\x04"
    frame = client_frame(OP_BINARY, payload, mask=mask)
    assert frame[0] == 0x80 | OP_BINARY
    assert frame[1] & 0x80  # masked, as every client frame must be
    head = 2 if size < 126 else 4 if size < 65536 else 10
    assert (frame[1] & 0x7F) == (size if size < 126 else 126 if size < 65536 else 127)
    assert frame[head : head + 4] == mask
    assert mask_payload(frame[head + 4 :], mask) == payload
    assert len(frame) == head + 4 + size


def test_reader_cuts_a_stream_fed_byte_by_byte() -> None:
    big = b"y" * 70_000
    stream = server_frame(OP_BINARY, b"\x00\x00\x01\x00") + server_frame(OP_PING, b"hb") + server_frame(OP_BINARY, big)
    reader = FrameReader()
    got: list[tuple[int, bytes]] = []
    for i in range(len(stream)):
        got += reader.feed(stream[i : i + 1])
    assert got == [(OP_BINARY, b"\x00\x00\x01\x00"), (OP_PING, b"hb"), (OP_BINARY, big)]


def test_reader_joins_fragments_and_passes_control_frames_between_them() -> None:
    stream = (
        server_frame(OP_BINARY, b"ab", fin=False)
        + server_frame(OP_PONG, b"")
        + server_frame(OP_CONTINUATION, b"cd", fin=False)
        + server_frame(OP_CONTINUATION, b"ef")
        + server_frame(OP_CLOSE, (1008).to_bytes(2, "big") + b"Rate limit exceeded")
    )
    assert FrameReader().feed(stream) == [
        (OP_PONG, b""),
        (OP_BINARY, b"abcdef"),
        (OP_CLOSE, b"\x03\xf0Rate limit exceeded"),
    ]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (bytes((0x82, 0x81)) + b"\x00\x00\x00\x00x", "masked frame"),
        (bytes((0xC2, 0x01)) + b"x", "RSV bits"),
        (server_frame(OP_CONTINUATION, b"x"), "continuation frame without"),
        (server_frame(OP_BINARY, b"a", fin=False) + server_frame(OP_BINARY, b"b"), "before the fragmented one"),
        (server_frame(0xB, b""), "unknown control opcode 11"),
        (server_frame(0x3, b""), "unknown data opcode 3"),
        (server_frame(OP_BINARY, b"x" * 200), "exceeds the 100-byte cap"),
    ],
)
def test_reader_rejects_what_rfc_6455_forbids(data: bytes, reason: str) -> None:
    with pytest.raises(WsFrameError, match=reason):
        FrameReader(max_size=100).feed(data)
