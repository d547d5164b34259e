"""The client's own y-websocket codec and the propagation registry, on real pycrdt documents."""

from __future__ import annotations

import pycrdt
import pytest

from scenarios.clients import yprotocol as yp
from scenarios.clients.propagation import AnnouncedEdits, EditRegistry


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**32, 2**53 - 1])
def test_var_uint_round_trip(value: int) -> None:
    encoded = yp.write_var_uint(value)
    assert encoded == pycrdt.write_var_uint(value)  # same bytes as pycrdt's encoder
    assert yp.read_var_uint(encoded + b"\x99", 0) == (value, len(encoded))


def test_frames_round_trip_and_match_pycrdt() -> None:
    doc = pycrdt.Doc()
    doc.get("codesync", type=pycrdt.Text).insert(0, "hi")
    update = doc.get_update(b"\x00")
    assert yp.update_frame(update) == pycrdt.create_update_message(update)
    assert yp.decode_frame(yp.update_frame(update)) == yp.Frame("update", update)
    assert yp.decode_frame(yp.sync_step1(doc.get_state())) == yp.Frame("sync_step1", doc.get_state())
    assert yp.decode_frame(yp.awareness_frame(b"\x00")) == yp.Frame("awareness", b"\x00")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty message"),
        (b"\x00\x05\x00", "unknown sync subtype 5"),
        (b"\x02\x00", "auth"),
        (b"\x09", "unknown message type 9"),
        (b"\x00\x02\x05ab", "runs past the end"),
        (b"\x80", "cut short"),
        (b"\xff" * 9, "longer than 8 bytes"),
    ],
)
def test_malformed_frames_are_named(data: bytes, reason: str) -> None:
    with pytest.raises(yp.FrameError, match=reason):
        yp.decode_frame(data)


def test_update_authors_and_state_vectors() -> None:
    doc = pycrdt.Doc()
    text = doc.get("codesync", type=pycrdt.Text)
    text.insert(0, "abc")
    before = doc.get_state()
    text.insert(0, "d")  # a second edit: its update starts at clock 3
    update = doc.get_update(before)
    assert yp.update_authors(update) == (1, doc.client_id)
    assert yp.decode_state_vector(doc.get_state()) == {doc.client_id: 4}
    before = doc.get_state()
    del text[0:2]
    assert yp.update_authors(doc.get_update(before)) == (0, None)  # deletions carry no author


def test_awareness_round_trip() -> None:
    state = {"user": {"name": "ada", "color": "#fff", "file": "a.py"}, "cursor": {"line": 1, "column": 2}}
    encoded = yp.encode_awareness([(7, 3, state), (8, 4, None)])
    assert yp.decode_awareness(encoded) == [(7, 3, state), (8, 4, None)]
    with pytest.raises(yp.FrameError, match="not JSON"):
        yp.decode_awareness(b"\x01\x07\x01\x02{x")


def test_registry_matches_edits_by_start_clock() -> None:
    registry = EditRegistry()
    registry.record(5, 0, 100.0)
    registry.record(5, 3, 101.0)  # an edit of 3 characters came before
    registry.record(5, 4, 102.0)
    assert registry.knows(5) and not registry.knows(6)
    assert registry.sent_times(5, 0, 4) == [100.0, 101.0]
    assert registry.sent_times(5, 4, 5) == [102.0]
    assert registry.sent_times(5, 5, 9) == []
    assert registry.sent_times(6, 0, 9) == []


def test_registry_forgets_old_entries_and_caps_each_client() -> None:
    registry = EditRegistry(horizon=10.0, max_per_client=3)
    for clock in range(5):
        registry.record(1, clock, 100.0 + clock)
    assert registry.sent_times(1, 0, 10) == [102.0, 103.0, 104.0]
    registry.record(1, 5, 200.0)  # everything else is older than the horizon
    assert registry.sent_times(1, 0, 10) == [200.0]


def test_registry_sweep_drops_closed_clients() -> None:
    registry = EditRegistry(horizon=10.0)
    registry.SWEEP_EVERY = 2
    registry.record(1, 0, 100.0)
    registry.record(2, 0, 200.0)  # second record: sweep drops client 1, older than 190
    assert not registry.knows(1) and registry.knows(2)


def test_announcements_pair_in_either_order() -> None:
    announced = AnnouncedEdits()
    # update first, then the announcement
    assert announced.applied(9, 0, 1, wall=50.25) == []
    assert announced.announced(9, 0, sent_wall=50.0) == pytest.approx(0.25)
    # announcement first (its update was pending), then the update
    assert announced.announced(9, 1, sent_wall=60.0) is None
    assert announced.applied(9, 1, 2, wall=60.5) == [pytest.approx(0.5)]
    # a stale announcement for an edit never seen in an Update stays unmatched
    assert announced.announced(9, 40, sent_wall=1.0) is None


def test_deletion_key_ignores_client_order_and_merges_ranges() -> None:
    # two encodings of one delete set: clients 5 and 9, written in either order
    ds_a = b"\x00" + b"\x02" + b"\x05\x01\x00\x02" + b"\x09\x02\x03\x01\x04\x01"
    ds_b = b"\x00" + b"\x02" + b"\x09\x01\x03\x02" + b"\x05\x01\x00\x02"
    assert yp.deletion_key(ds_a) == yp.deletion_key(ds_b) == ((5, 0, 2), (9, 3, 2))
    doc = pycrdt.Doc()
    doc.get("codesync", type=pycrdt.Text).insert(0, "abc")
    assert yp.deletion_key(doc.get_update(b"\x00")) is None  # carries structs
