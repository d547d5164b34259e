"""A lock for short critical sections that never yield, C-level even under gevent's patching.

    >>> lock = short_lock()
    >>> with lock:
    ...     counts[key] += 1          # no I/O, no sleep, no call that could switch greenlets

Why: the load generator's bookkeeping (the ledger's counters, the propagation registry) takes
a lock on every frame and every latency sample, thousands of times a second per process.
Under Locust, gevent has patched `threading`: `threading.Lock` is then gevent's lock and
`threading.RLock` a pure-Python class, about two to three times the cost of the interpreter's
own lock (benchmarks/RESULTS.md). The interpreter's lock is correct there as long as the
section it guards cannot yield: a greenlet that holds it runs to the release before any other
greenlet can ask for it, and a real thread (gevent's thread pool, or an unpatched process)
simply waits its turn as usual. Every section guarded by such a lock must keep that promise:
plain dict/list work only. Not reentrant.
"""

from __future__ import annotations

import sys
import threading
from typing import Any


def short_lock() -> Any:
    """The interpreter's own (unpatched) lock, for sections that never block or yield."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        return monkey.get_original("_thread", "allocate_lock")()
    return threading.Lock()
