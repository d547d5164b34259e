"""Identifiers and timestamps shaped like the ones CodeSync's Prisma models hand out.

    >>> new_id()            # 'c' + 24 lower-case base-36 characters, like a cuid
    'clx3k9v0g0000a1b2c3d4e5f6'
    >>> now_iso()           # what JavaScript's Date.toISOString() prints
    '2026-11-27T05:12:00.123Z'

Clients treat ids as opaque strings; keeping the cuid shape means a log or a URL from the
twin looks like one from CodeSync, and ids sort roughly by creation time.
"""

from __future__ import annotations

import itertools
import os
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_counter = itertools.count()
_lock = threading.Lock()
_FINGERPRINT = os.getpid() % (36**4)


def _base36(value: int, width: int) -> str:
    digits = []
    for _ in range(width):
        value, rem = divmod(value, 36)
        digits.append(_ALPHABET[rem])
    return "".join(reversed(digits))


def new_id() -> str:
    """A 25-character cuid-shaped id: time, a per-process counter, the PID and randomness."""
    with _lock:
        count = next(_counter) % (36**4)
    return (
        "c"
        + _base36(int(time.time() * 1000), 8)
        + _base36(count, 4)
        + _base36(_FINGERPRINT, 4)
        + _base36(secrets.randbits(41), 8)
    )


def now_iso() -> str:
    """UTC now with millisecond precision and a trailing Z, as CodeSync's JSON carries it."""
    return _iso(datetime.now(UTC))


def iso_after(seconds: float) -> str:
    """now_iso() of `seconds` from now (an expiry); ISO strings of one format sort by time."""
    return _iso(datetime.now(UTC) + timedelta(seconds=seconds))


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
