"""pycrdt's document calls on the load path, made straight into its Rust core when that is safe.

    >>> state = state_of(doc)                # == doc.get_state()
    >>> update = update_since(doc, state)    # == doc.get_update(state)
    >>> apply_update(doc, update)            # == doc.apply_update(update)

Why. pycrdt's `Doc.get_state`, `Doc.get_update` and `Doc.apply_update` wrap one call into
the core in a Python `Transaction` (a context manager, a lease count, origin bookkeeping, a
lock when the document allows multithreading). On the load path, a connection's every read and every keystroke, the
wrapper costs about as much as the call (measured: apply 1.8 us with it, 1.0 us without).
These functions ask the core directly in a transaction of their own when nothing the wrapper
guards is in play: no transaction open on the document, no multithreading lock, no pydantic
model; otherwise, or should pycrdt's internals change (an attribute missing), they call the
public method. Observer errors the core collected during the apply are raised as pycrdt
raises them (an ExceptionGroup), so a document with observers behaves the same either way.
"""

from __future__ import annotations

from typing import Any


def _core(doc: Any) -> Any | None:
    """The document's core when the direct call is equivalent to the public one, else None."""
    core = getattr(doc, "_doc", None)
    if core is None or getattr(doc, "_txn", True) is not None or getattr(doc, "_allow_multithreading", True):
        return None
    return core


def state_of(doc: Any) -> bytes:
    """`doc.get_state()`: the encoded state vector."""
    core = _core(doc)
    if core is None:
        return doc.get_state()
    txn = core.create_transaction()
    try:
        return core.get_state(txn)
    finally:
        txn.commit()
        txn.drop()


def update_since(doc: Any, state: bytes) -> bytes:
    """`doc.get_update(state)`: the update holding what `doc` has past the state vector `state`."""
    core = _core(doc)
    if core is None:
        return doc.get_update(state)
    txn = core.create_transaction()
    try:
        return core.get_update(txn, state)
    finally:
        txn.commit()
        txn.drop()


def apply_update(doc: Any, update: bytes) -> None:
    """`doc.apply_update(update)`; pycrdt's error when the core rejects the update."""
    core = _core(doc)
    if core is None or getattr(doc, "_Model", True) is not None:
        doc.apply_update(update)
        return
    txn = core.create_transaction()
    try:
        core.apply_update(txn, update)
    finally:
        txn.commit()
        txn.drop()
    exceptions = doc._exceptions
    if exceptions:
        raised = tuple(exceptions)
        exceptions.clear()
        raise ExceptionGroup("Observer callback error", raised)
