"""The direct core calls answer exactly what pycrdt's public methods answer, and fail the same."""

from __future__ import annotations

import pycrdt
import pytest

from scenarios.clients import yprotocol as yp
from scenarios.clients.pycrdt_core import apply_update, state_of, update_since


def _typed(text: str) -> pycrdt.Doc:
    doc = pycrdt.Doc()
    doc.get("codesync", type=pycrdt.Text).insert(0, text)
    return doc


def test_state_of_answers_what_get_state_answers_inside_and_outside_a_transaction() -> None:
    doc = pycrdt.Doc()
    text = doc.get("codesync", type=pycrdt.Text)
    assert state_of(doc) == doc.get_state() == b"\x00"
    text.insert(0, "abc")
    assert state_of(doc) == doc.get_state()
    with doc.transaction():
        text.insert(0, "x")
        assert state_of(doc) == doc.get_state()  # inside: through pycrdt's own transaction
    assert yp.decode_state_vector(state_of(doc)) == {doc.client_id: 4}


def test_update_since_is_get_update_with_and_without_an_open_transaction() -> None:
    doc = _typed("hello")
    before = state_of(doc)
    doc.get("codesync", type=pycrdt.Text).insert(0, ">")
    assert update_since(doc, before) == doc.get_update(before)
    assert update_since(doc, b"\x00") == doc.get_update()
    with doc.transaction():
        assert update_since(doc, before) == doc.get_update(before)
    other = pycrdt.Doc()
    apply_update(other, update_since(doc, b"\x00"))
    assert str(other.get("codesync", type=pycrdt.Text)) == ">hello"


def test_apply_update_integrates_like_the_public_method_and_fires_observers() -> None:
    source = _typed("abc")
    direct, public = pycrdt.Doc(), pycrdt.Doc()
    seen: list[str] = []
    text = direct.get("codesync", type=pycrdt.Text)  # held: the subscription lives with it
    text.observe(lambda event: seen.append(str(event.delta)))
    apply_update(direct, source.get_update())
    public.apply_update(source.get_update())
    assert str(text) == str(public.get("codesync", type=pycrdt.Text)) == "abc"
    assert direct.get_state() == public.get_state()
    assert seen == ["[{'insert': 'abc'}]"]  # the commit ran the document's observers, as pycrdt's apply does


def test_apply_update_raises_an_observers_error_as_pycrdt_does() -> None:
    doc = pycrdt.Doc()

    def failing(event: object) -> None:
        raise RuntimeError("observer failed")

    text = doc.get("codesync", type=pycrdt.Text)
    text.observe(failing)
    with pytest.raises(ExceptionGroup) as raised:
        apply_update(doc, _typed("x").get_update())
    assert [str(e) for e in raised.value.exceptions] == ["observer failed"]
    assert str(text) == "x"  # applied all the same, as with pycrdt's own apply
    text.unobserve(text._subscriptions[0])
    apply_update(doc, _typed("y").get_update())  # cleared: the next apply does not raise it again
    assert sorted(str(text)) == ["x", "y"]


def test_apply_update_rejects_what_pycrdt_rejects_and_leaves_the_document_usable() -> None:
    doc = _typed("keep")
    with pytest.raises(Exception) as direct_error:
        apply_update(doc, b"\xff\xff\xff")
    with pytest.raises(Exception) as public_error:
        _typed("keep").apply_update(b"\xff\xff\xff")
    assert type(direct_error.value) is type(public_error.value)
    assert str(doc.get("codesync", type=pycrdt.Text)) == "keep"
    apply_update(doc, _typed("!").get_update())
    assert sorted(str(doc.get("codesync", type=pycrdt.Text))) == sorted("keep!")


def test_a_multithreaded_or_busy_document_goes_through_pycrdt() -> None:
    """Where the wrapper guards something (a lock, an open transaction), the public method runs."""
    doc = pycrdt.Doc(allow_multithreading=True)
    apply_update(doc, _typed("mt").get_update())
    assert state_of(doc) == doc.get_state()
    assert str(doc.get("codesync", type=pycrdt.Text)) == "mt"
    busy = _typed("a")
    text = busy.get("codesync", type=pycrdt.Text)
    with busy.transaction():
        text.insert(1, "b")
        apply_update(busy, _typed("c").get_update())  # joins the open transaction, as pycrdt's own
        assert sorted(str(text)) == ["a", "b", "c"]
    assert sorted(str(text)) == ["a", "b", "c"]
