"""`short_lock`: the interpreter's own lock, in a plain process and under gevent's patching."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import gevent.monkey
gevent.monkey.patch_all()
import threading
from codesync_load.ledger import Ledger
from codesync_load.locks import short_lock
from scenarios.clients.propagation import EditRegistry
print(type(threading.Lock()).__module__, type(short_lock()).__module__,
      type(Ledger()._lock).__module__, type(EditRegistry()._lock).__module__)
"""


def test_the_short_lock_stays_the_interpreters_lock_when_gevent_patched_threading() -> None:
    """Patched, `threading.Lock` is gevent's; the ledger's and the registry's locks are not."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    patched, short, ledger, registry = done.stdout.split()
    assert patched.startswith("gevent")
    assert (short, ledger, registry) == ("_thread", "_thread", "_thread")


def test_the_short_lock_is_a_plain_lock_without_gevent() -> None:
    from codesync_load.locks import short_lock

    lock = short_lock()
    assert type(lock).__module__ == "_thread"
    assert lock.acquire(blocking=False)
    assert not lock.acquire(blocking=False)  # not reentrant: no ledger method calls another under it
    lock.release()
