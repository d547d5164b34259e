"""Edit propagation latency without touching the text: edits are known by their Yjs ids.

    >>> registry = EditRegistry()
    >>> registry.record(client_id=7, start_clock=10, sent_at=time.perf_counter())  # sender
    >>> registry.sent_times(client_id=7, low=10, high=11)                          # receiver
    [812.03]

Why this works. Every Yjs item has an id (client id, clock); a client's clock only grows, and
an insert of k characters takes the clocks [c, c+k). So an edit is named, uniquely and for
free, by (its author's client id, the author's clock before the edit). The sender records that
name with its send time (`time.perf_counter()`) in a registry shared by every client of the
process. A receiver compares its document's state vector before and after `apply_update`: the
clocks that advanced, [before, after) per client, are exactly the items that became visible in
this apply, whichever update carried them, and including updates that waited as pending for a
missing predecessor. Every recorded edit whose start clock lies in such a range yields one
sample: now minus its send time. Nothing is embedded in the text, no observer is installed
on the document, and N inserting edits by A give exactly N samples at each other client B.

Only edits sent after the receiver's connection opened are samples (`EditTracker.opened`):
an older edit reaches a newcomer by state transfer, in the SyncStep2 of its sync or, from a
server that loads stored state asynchronously as CodeSync does, in an Update right after it.
Counting those measured "propagation" of 9-24 s against a server whose relay took 3 ms.

Limits, stated: a pure deletion creates no item and moves no clock, so it is counted as sent
but has no latency sample (`YjsClient.replace` deletes and inserts in one update, and is
sampled). Entries older than `horizon` seconds (a propagation slower than that is a failure
anyway), or beyond `max_per_client`, are forgotten, closed clients' entries included.

Across processes (Locust workers, a separate verifier) a perf_counter means nothing, so a
sender may also announce each edit in its awareness state as `edit: {clock, sentAt}` with
`sentAt` a wall-clock time (`time.time()`, the same clock for all processes on one host);
`AnnouncedEdits` on the receiver pairs those announcements with the ranges it applied,
whichever arrives first. The in-process registry wins when it knows the author.

`EditTracker` is one client's use of all this (name our edits before sending, recognise their
echoes, sample the others' edits as they apply), so that YjsClient and the lean connection
sample identically; `near_start_keystroke` is the load keystroke both type.
"""

from __future__ import annotations

import bisect
import re
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from codesync_load.locks import short_lock
from scenarios.clients import yprotocol as yp
from scenarios.clients.pycrdt_core import apply_update, state_of, update_since


class EditRegistry:
    """(client id, start clock) -> send time, shared by the clients of one process. Thread-safe.

    Its lock is `short_lock()` (C-level under gevent too): taken once per edit and once per
    sampled apply, and nothing under it yields.
    """

    # Every this many records, entries of every client (closed ones included) are aged out.
    SWEEP_EVERY = 10_000

    def __init__(self, *, horizon: float = 60.0, max_per_client: int = 100_000) -> None:
        self.horizon = horizon
        self.max_per_client = max_per_client
        self._lock = short_lock()
        self._records = 0
        self._starts: dict[int, list[int]] = {}
        self._times: dict[int, list[float]] = {}

    def record(self, client_id: int, start_clock: int, sent_at: float) -> None:
        """Remember that `client_id` sent the edit starting at `start_clock` at `sent_at`."""
        with self._lock:
            starts = self._starts.setdefault(client_id, [])
            times = self._times.setdefault(client_id, [])
            if starts and start_clock <= starts[-1]:
                # a clock never goes back for one client; a repeat means a reused id: start over
                starts.clear()
                times.clear()
            starts.append(start_clock)
            times.append(sent_at)
            cut = bisect.bisect_left(times, sent_at - self.horizon)
            cut = max(cut, len(starts) - self.max_per_client)
            if cut > 0:
                del starts[:cut]
                del times[:cut]
            self._records += 1
            if self._records % self.SWEEP_EVERY == 0:
                self._sweep(sent_at - self.horizon)

    def _sweep(self, oldest: float) -> None:
        for client_id in list(self._times):
            times = self._times[client_id]
            cut = bisect.bisect_left(times, oldest)
            if cut >= len(times):
                del self._times[client_id]
                del self._starts[client_id]
            elif cut:
                del times[:cut]
                del self._starts[client_id][:cut]

    def knows(self, client_id: int) -> bool:
        with self._lock:
            return client_id in self._starts

    def sent_times(self, client_id: int, low: int, high: int) -> list[float]:
        """Send times of the edits of `client_id` whose start clock is in [low, high)."""
        with self._lock:
            starts = self._starts.get(client_id)
            if not starts:
                return []
            first = bisect.bisect_left(starts, low)
            last = bisect.bisect_left(starts, high)
            return self._times[client_id][first:last]

    def sent_times_if_known(self, client_id: int, low: int, high: int) -> list[float] | None:
        """`sent_times` when `client_id` has entries here, else None: one lock for both questions."""
        with self._lock:
            starts = self._starts.get(client_id)
            if starts is None:
                return None
            first = bisect.bisect_left(starts, low)
            last = bisect.bisect_left(starts, high)
            return self._times[client_id][first:last]

    def forget(self, client_id: int) -> None:
        """Drop a client's entries (when it closes; its id is never reused)."""
        with self._lock:
            self._starts.pop(client_id, None)
            self._times.pop(client_id, None)


DEFAULT_REGISTRY = EditRegistry()


class AnnouncedEdits:
    """Receiver side of the cross-process mode: pairs awareness announcements with applied ranges.

    One instance per receiving client, used under that client's lock.
    """

    def __init__(self, *, keep: int = 4096) -> None:
        self._applied: dict[int, deque[tuple[int, int, float]]] = {}
        self._pending: dict[int, deque[tuple[int, float]]] = {}
        self._keep = keep

    def applied(self, client_id: int, low: int, high: int, wall: float) -> list[float]:
        """Clocks [low, high) of `client_id` became visible at `wall`; returns matched latencies."""
        samples: list[float] = []
        pending = self._pending.get(client_id)
        if pending:
            left: deque[tuple[int, float]] = deque(maxlen=self._keep)
            for clock, sent in pending:
                if low <= clock < high:
                    samples.append(wall - sent)
                else:
                    left.append((clock, sent))
            self._pending[client_id] = left
        ranges = self._applied.setdefault(client_id, deque(maxlen=self._keep))
        ranges.append((low, high, wall))
        return samples

    def announced(self, client_id: int, clock: int, sent_wall: float) -> float | None:
        """An announcement arrived; the latency when its range was already applied, else None."""
        ranges = self._applied.get(client_id)
        if ranges:
            for index in range(len(ranges) - 1, -1, -1):
                low, high, wall = ranges[index]
                if low <= clock < high:
                    if high - low == 1:
                        del ranges[index]
                    return wall - sent_wall
        self._pending.setdefault(client_id, deque(maxlen=self._keep)).append((clock, sent_wall))
        return None


def wall_clock() -> float:
    """The clock announcements use: comparable across the processes of one host."""
    return time.time()


class EditTracker:
    """One client's side of propagation and echoes, shared by `YjsClient` and `LeanYjsConnection`.

        >>> tracker = EditTracker(doc.client_id, DEFAULT_REGISTRY)
        >>> update, start = tracker.local_edit(doc, lambda: text.insert(0, "x"))  # before sending
        >>> tracker.is_echo(update_from_server)                                   # our own, echoed?
        >>> tracker.apply(doc, update)                                             # -> latencies
        >>> tracker.apply_unsampled(doc, u1); tracker.apply_unsampled(doc, u2)    # several at once:
        >>> tracker.take_samples(doc)                                              # -> their latencies
        >>> doc.apply_update(step2); tracker.state_changed()                      # unsampled apply

    Why one class: both clients must name edits, recognise their echoes and sample latencies
    identically, or the ledger would depend on which client a user ran. It holds no lock: its
    owner calls it under its own lock (YjsClient) or from one greenlet/hub callback at a time
    (the lean connection). The deletion keys and the cross-process pairing are created on first
    use, so an idle connection pays for neither.
    """

    __slots__ = (
        "_announced",
        "_deletions",
        "_opened",
        "_opened_wall",
        "_own",
        "_unsampled",
        "_vector",
        "client_id",
        "registry",
    )

    DELETIONS_KEPT = 256

    def __init__(self, client_id: int, registry: EditRegistry | None) -> None:
        self.client_id = client_id
        self.registry = registry
        self._deletions: deque[tuple[tuple[int, int, int], ...] | None] | None = None
        self._announced: AnnouncedEdits | None = None
        # The state vector after our last sampled apply, still encoded (see `raw_state_vector`).
        self._vector: dict[bytes, bytes] | None = None
        self._own = yp.write_var_uint(client_id)
        self._unsampled = False  # updates applied by apply_unsampled since the last take_samples
        # When our connection opened (perf_counter, wall clock): older edits are state transfer.
        self._opened = float("-inf")
        self._opened_wall = float("-inf")

    def opened(self, at: float, wall: float) -> None:
        """Our connection opened at `at` (time.perf_counter()) = `wall` (wall_clock()).

        Edits sent before that are never propagation samples: they reach us by state transfer
        (SyncStep2, or the Update a server sends once its asynchronous load of stored state is
        done), whenever that arrives.
        """
        self._opened = at
        self._opened_wall = wall

    # -- our own edits -----------------------------------------------------------------------

    def local_edit(self, doc: Any, change: Callable[[], None]) -> tuple[bytes, int | None]:
        """Apply `change` to `doc` in one transaction; (update to send, its start clock or None).

        Call it right before sending: an inserting edit is recorded in the registry now, since
        an in-process receiver may apply it before the send returns; a pure deletion (no new
        item, start None) is remembered by its delete set so that its echo is recognised.
        """
        before = state_of(doc)
        with doc.transaction():
            change()
        update = update_since(doc, before)
        # The update holds the structs past `before`: if it inserted, exactly one block, ours,
        # starting at our clock before the edit (read from its header, no state vector decoded).
        start = yp.update_start(update, self.client_id)
        if start is not None:
            if self.registry is not None:
                self.registry.record(self.client_id, start, time.perf_counter())
            return update, start
        if self._deletions is None:
            self._deletions = deque(maxlen=self.DELETIONS_KEPT)
        self._deletions.append(yp.deletion_key(update))
        return update, None

    def is_echo(self, update: bytes) -> bool:
        """Whether the server's update is our own edit sent back; FrameError when unreadable.

        An update of one transaction holds one block, its author's; a deletion has none and is
        ours when we sent exactly this delete set (each sent deletion matches once). The header's
        numbers are compared still encoded (this runs for every update received): lib0 writes
        the shortest encoding, and a longer one is decoded before it is compared.
        """
        head = _UPDATE_HEAD.match(update)
        if head is None:
            blocks, author = yp.update_authors(update)  # cut short: yprotocol names what is wrong
            if blocks:
                return blocks == 1 and author == self.client_id
        else:
            count = head[1]
            blocks = 1 if count == b"\x01" else 0 if count == b"\x00" else _var_uint(count)
            if blocks:
                raw = head[2]
                own = self._own
                return blocks == 1 and (raw == own or (len(raw) > len(own) and _var_uint(raw) == self.client_id))
        key = yp.deletion_key(update)
        if self._deletions is not None and key in self._deletions:
            self._deletions.remove(key)
            return True
        return False

    # -- the others' edits -------------------------------------------------------------------

    def apply(self, doc: Any, update: bytes) -> list[float]:
        """Apply the others' `update` to `doc`; returns the latencies it completes.

        The state vector after one apply is the one before the next, so it is kept: our own
        edits move only our own clock, which sampling skips. Any other change to the document
        (a SyncStep2 applied unsampled) must call `state_changed()`. pycrdt's error, if it
        rejects the update, propagates for the client to name.

        `apply_unsampled` + `take_samples` do the same for several updates at the price of one.
        """
        self.apply_unsampled(doc, update)
        return self.take_samples(doc)

    def apply_unsampled(self, doc: Any, update: bytes) -> None:
        """Apply the others' `update` now; its latencies come with the next `take_samples(doc)`.

        For a client that handles several updates in one go (the lean connection, all the
        frames of one socket read): the state vector is read once for all of them, and every
        edit they made visible is sampled then, microseconds after its own apply. Call
        `take_samples` before any other change to the document (`state_changed`).
        """
        if self._vector is None:
            self._vector = raw_state_vector(state_of(doc))
        self._unsampled = True  # even if pycrdt rejects it: what it integrated is then sampled
        apply_update(doc, update)

    def take_samples(self, doc: Any) -> list[float]:
        """The latencies completed since the last `take_samples` by updates applied unsampled.

        This runs for every socket read that carried updates, so the vectors stay encoded:
        which clients' clocks moved is a set difference of (client, clock) byte pairs, and only
        those (usually one per author) are decoded.
        """
        if not self._unsampled:
            return []
        self._unsampled = False
        before = self._vector
        assert before is not None  # set by apply_unsampled
        after = raw_state_vector(state_of(doc))
        self._vector = after
        moved = after.items() - before.items()
        if not moved:
            return []
        own = self._own
        low: dict[int, int] = {}
        high: dict[int, int] = {}
        for client, clock in moved:
            if client == own:
                continue
            client_id = _client_id(client)
            high[client_id] = _var_uint(clock)
            old = before.get(client)
            if old is not None:
                low[client_id] = _var_uint(old)
        return self.applied(low, high) if high else []

    def state_changed(self) -> None:
        """The document changed otherwise than through `apply`: forget the kept state vector.

        Updates applied unsampled and not yet taken would then be sampled against the wrong
        vector: take their samples first (ValueError otherwise, a bug in the client).
        """
        if self._unsampled:
            raise ValueError("take_samples() before state_changed(): updates applied unsampled are pending")
        self._vector = None

    def applied(self, before: dict[int, int], after: dict[int, int]) -> list[float]:
        """Latencies completed by the clocks that advanced from `before` to `after` (decoded)."""
        applied_at = time.perf_counter()
        samples: list[float] = []
        registry = self.registry
        for client, high in after.items():
            low = before.get(client, 0)
            if high <= low or client == self.client_id:
                continue
            known = registry.sent_times_if_known(client, low, high) if registry is not None else None
            if known is not None:
                opened = self._opened
                samples += [applied_at - sent for sent in known if sent >= opened]
            else:
                if self._announced is None:
                    self._announced = AnnouncedEdits()
                samples.extend(self._announced.applied(client, low, high, wall_clock()))
        return samples

    def announcement(self, client: int, state: Any) -> float | None:
        """The latency an awareness state's `edit: {clock, sentAt}` completes, if any."""
        edit = state.get("edit") if isinstance(state, dict) else None
        if (
            client == self.client_id
            or not isinstance(edit, dict)
            or not isinstance(edit.get("clock"), int)
            or not isinstance(edit.get("sentAt"), int | float)
            or (self.registry is not None and self.registry.knows(client))
            or edit["sentAt"] < self._opened_wall  # sent before we connected: state transfer
        ):
            return None
        if self._announced is None:
            self._announced = AnnouncedEdits()
        return self._announced.announced(client, edit["clock"], float(edit["sentAt"]))

    def awareness(self, entries: list[tuple[int, int, Any]], states: dict[int, Any] | None) -> list[float]:
        """Take decoded awareness entries: update `states` (None: keep none), return latencies.

        A None state is a client leaving; any other state may carry an edit announcement.
        """
        samples: list[float] = []
        for client, _clock, state in entries:
            if state is None:
                if states is not None:
                    states.pop(client, None)
                continue
            if states is not None:
                states[client] = state
            latency = self.announcement(client, state)
            if latency is not None:
                samples.append(latency)
        return samples


_VAR_UINT = re.compile(rb"[\x80-\xff]*[\x00-\x7f]")  # one lib0 varUint: high bit set but on the last byte
_VAR_UINT_PAIR = re.compile(rb"([\x80-\xff]*[\x00-\x7f])([\x80-\xff]*[\x00-\x7f])")  # (client, clock)
# The head of a v1 update: its number of blocks, the first block's number of structs, its client.
_UPDATE_HEAD = re.compile(rb"([\x80-\xff]*[\x00-\x7f])[\x80-\xff]*[\x00-\x7f]([\x80-\xff]*[\x00-\x7f])")
_CLIENT_IDS: dict[bytes, int] = {}  # encoded client id -> id: the same few ids recur on every apply
_CLIENT_IDS_KEPT = 65536


def raw_state_vector(state: bytes) -> dict[bytes, bytes]:
    """client id -> clock of an encoded state vector (`Doc.get_state()`), each still a varUint's bytes.

    Cut in C by a regular expression, so comparing two vectors costs no Python loop per byte
    (`yprotocol.decode_state_vector` decodes every number). Meant for vectors pycrdt made;
    FrameError when the count of numbers cannot be one count and its pairs.
    """
    head = _VAR_UINT.match(state)
    pairs = _VAR_UINT_PAIR.findall(state, head.end()) if head is not None else ()
    if head is None or len(pairs) != _var_uint(head[0]):
        raise yp.FrameError("state vector is cut short")
    return dict(pairs)


def _var_uint(raw: bytes) -> int:
    value = 0
    for byte in reversed(raw):
        value = (value << 7) | (byte & 0x7F)
    return value


def _client_id(raw: bytes) -> int:
    client = _CLIENT_IDS.get(raw)
    if client is None:
        if len(_CLIENT_IDS) >= _CLIENT_IDS_KEPT:
            _CLIENT_IDS.clear()
        client = _CLIENT_IDS[raw] = _var_uint(raw)
    return client


KEYSTROKE_CHARS = "abcdefghijklmnopqrstuvwxyz "


def near_start_keystroke(text: Any, rng: Any, *, window: int = 16, max_length: int = 4000) -> Callable[[], None]:
    """A load-style keystroke on a pycrdt Text, as a change for `EditTracker.local_edit`.

    One character at a random spot among the first `window`: inserting near the start keeps
    pycrdt's cost flat (appending with several authors gets slow as the text grows, field
    notes). Past `max_length` the keystroke also deletes a character, so the text stops
    growing and every keystroke still inserts, i.e. still yields a latency sample. A deletion
    leaves a tombstone where everyone types, and pycrdt walks those on every later keystroke
    near the start (a deletion averaged 5 us over a document's first 2,000 and 58 us between
    6,000 and 8,000; benchmarks/RESULTS.md): a long soak's per-keystroke cost grows with them,
    as a real editor's document does, so the benchmark types insert-only (`sys.maxsize`). The
    random draws are made now, in the same order for every client, so a seeded run repeats.
    """
    size = len(text)
    position = rng.randint(0, min(size, window))
    char = rng.choice(KEYSTROKE_CHARS)
    if size >= max_length:
        position = min(position, size - 1)

        def replace() -> None:
            del text[position : position + 1]
            text.insert(position, char)

        return replace
    return lambda: text.insert(position, char)
