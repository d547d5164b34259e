"""EditTracker and near_start_keystroke, the logic YjsClient and the lean connection share.

Real pycrdt documents exchange real updates; no network: the clients' own tests (twin,
upstream, lean under gevent) cover the wire.
"""

from __future__ import annotations

import random

import pycrdt
import pytest

from scenarios.clients import yprotocol as yp
from scenarios.clients.propagation import EditRegistry, EditTracker, near_start_keystroke, raw_state_vector


def _pair(registry_a: EditRegistry | None, registry_b: EditRegistry | None):
    a, b = pycrdt.Doc(), pycrdt.Doc()
    return (a, a.get("codesync", type=pycrdt.Text), EditTracker(a.client_id, registry_a)), (
        b,
        b.get("codesync", type=pycrdt.Text),
        EditTracker(b.client_id, registry_b),
    )


def _apply(doc: pycrdt.Doc, tracker: EditTracker, update: bytes) -> list[float]:
    return tracker.apply(doc, update)


def test_inserts_are_named_by_start_clock_sampled_once_and_recognised_as_echoes() -> None:
    registry = EditRegistry()
    (doc_a, text_a, a), (doc_b, _text_b, b) = _pair(registry, registry)
    updates = []
    for chunk in ("ab", "c", "def"):
        update, start = a.local_edit(doc_a, lambda chunk=chunk: text_a.insert(0, chunk))
        updates.append((update, start))
    assert [start for _, start in updates] == [0, 2, 3]  # clocks before each edit
    assert all(a.is_echo(update) for update, _ in updates)  # ours, as the server sends them back
    assert not any(b.is_echo(update) for update, _ in updates)
    samples = [len(_apply(doc_b, b, update)) for update, _ in updates]
    assert samples == [1, 1, 1]  # one per edit, whatever its length
    assert str(doc_b.get("codesync", type=pycrdt.Text)) == "defcab"


def test_a_pure_deletion_is_an_echo_exactly_once_and_never_sampled() -> None:
    registry = EditRegistry()
    (doc_a, text_a, a), (doc_b, _text_b, b) = _pair(registry, registry)
    insert, _ = a.local_edit(doc_a, lambda: text_a.insert(0, "hello"))
    _apply(doc_b, b, insert)
    deletion, start = a.local_edit(doc_a, lambda: text_a.__delitem__(slice(0, 2)))
    assert start is None
    assert a.is_echo(deletion) is True
    assert a.is_echo(deletion) is False  # each sent deletion matches one echo
    assert b.is_echo(deletion) is False
    assert _apply(doc_b, b, deletion) == []


def test_other_processes_edits_pair_with_their_announcements() -> None:
    (doc_a, text_a, a), (doc_b, _text_b, b) = _pair(EditRegistry(), EditRegistry())  # two "processes"
    update, start = a.local_edit(doc_a, lambda: text_a.insert(0, "x"))
    assert _apply(doc_b, b, update) == []  # b's registry does not know a: wait for the announcement
    latency = b.announcement(doc_a.client_id, {"user": {}, "edit": {"clock": start, "sentAt": 1.0}})
    assert latency is not None and latency > 0
    assert b.announcement(doc_a.client_id, {"cursor": {"line": 1, "column": 0}}) is None  # no edit in it
    assert b.announcement(doc_b.client_id, {"edit": {"clock": 0, "sentAt": 1.0}}) is None  # our own


def test_near_start_keystroke_inserts_in_the_window_and_replaces_past_the_cap() -> None:
    doc = pycrdt.Doc()
    text = doc.get("codesync", type=pycrdt.Text)
    rng = random.Random(3)
    for _ in range(40):
        near_start_keystroke(text, rng, window=4, max_length=10)()
    assert len(text) == 10  # grew to the cap, then each keystroke replaced a character
    same_a, same_b = random.Random(9), random.Random(9)
    doc_a, doc_b = pycrdt.Doc(), pycrdt.Doc()
    text_a, text_b = doc_a.get("codesync", type=pycrdt.Text), doc_b.get("codesync", type=pycrdt.Text)
    for _ in range(20):
        near_start_keystroke(text_a, same_a)()
        near_start_keystroke(text_b, same_b)()
    assert str(text_a) == str(text_b) and len(text_a) == 20  # seeded: the same keystrokes


def test_an_update_waiting_for_its_predecessor_is_sampled_when_the_gap_fills() -> None:
    registry = EditRegistry()
    (doc_a, text_a, a), (doc_b, _text_b, b) = _pair(registry, registry)
    first, _ = a.local_edit(doc_a, lambda: text_a.insert(0, "1"))
    second, _ = a.local_edit(doc_a, lambda: text_a.insert(0, "2"))
    assert _apply(doc_b, b, second) == []  # pending: its clock is not visible yet
    assert len(_apply(doc_b, b, first)) == 2  # both became visible in this apply


def test_an_unsampled_change_must_be_announced_or_its_edits_would_be_sampled_again() -> None:
    registry = EditRegistry()
    (doc_a, text_a, a), (doc_b, _text_b, b) = _pair(registry, registry)
    first, _ = a.local_edit(doc_a, lambda: text_a.insert(0, "1"))
    assert len(_apply(doc_b, b, first)) == 1
    second, _ = a.local_edit(doc_a, lambda: text_a.insert(0, "2"))
    doc_b.apply_update(second)  # e.g. a SyncStep2 after a re-sync: not a propagation
    b.state_changed()
    third, _ = a.local_edit(doc_a, lambda: text_a.insert(0, "3"))
    assert len(_apply(doc_b, b, third)) == 1  # only the third; without state_changed it would be 2


def test_updates_applied_unsampled_give_their_samples_all_at_once_and_only_once() -> None:
    """The lean connection's way (one state vector per socket read): the same samples as apply."""
    registry = EditRegistry()
    (doc_a, text_a, a), (doc_b, _text_b, b) = _pair(registry, registry)
    (doc_c, text_c, c), _ = _pair(registry, None)
    edits = [a.local_edit(doc_a, lambda i=i: text_a.insert(0, str(i)))[0] for i in range(3)]
    edits.append(c.local_edit(doc_c, lambda: text_c.insert(0, "c"))[0])
    assert b.take_samples(doc_b) == []  # nothing applied yet
    for update in edits:
        b.apply_unsampled(doc_b, update)
    samples = b.take_samples(doc_b)
    assert len(samples) == 4 and all(0 < s < 5 for s in samples)  # two authors, four edits
    assert b.take_samples(doc_b) == []  # taken once
    b.apply_unsampled(doc_b, a.local_edit(doc_a, lambda: text_a.insert(0, "x"))[0])
    with pytest.raises(ValueError, match="take_samples"):
        b.state_changed()  # the pending sample would be lost or misattributed
    assert len(b.take_samples(doc_b)) == 1
    b.state_changed()
    assert sorted(str(doc_b.get("codesync", type=pycrdt.Text))) == sorted("x210c")  # every edit applied


def test_raw_state_vector_holds_every_client_and_clock_still_encoded() -> None:
    """Cut by pairs in C; decoded, it is exactly what yprotocol reads number by number."""
    docs = [pycrdt.Doc() for _ in range(4)]
    reader = pycrdt.Doc()
    for size, doc in zip((1, 127, 128, 20_000), docs, strict=True):  # clocks of 1, 2 and 3 bytes
        doc.get("source", type=pycrdt.Text).insert(0, "x" * size)
        reader.apply_update(doc.get_update())
    state = reader.get_state()
    raw = raw_state_vector(state)
    decoded = {yp.read_var_uint(client, 0)[0]: yp.read_var_uint(clock, 0)[0] for client, clock in raw.items()}
    assert (
        decoded
        == yp.decode_state_vector(state)
        == {doc.client_id: size for doc, size in zip(docs, (1, 127, 128, 20_000), strict=True)}
    )
    assert raw_state_vector(b"\x00") == {}
    for cut in (state[:-1], state[:-3], b"\x02" + state[1:]):
        with pytest.raises(yp.FrameError, match="cut short"):
            raw_state_vector(cut)
