"""The time windows a verification reads: before the load, the plateau, after the load.

    >>> w = LoadWindow.from_ledger_file(run_dir / "ledger.json")
    >>> w.start, w.end, w.plateau          # epoch seconds
    (1700000000.0, 1700000014.0, (1700000004.0, 1700000014.0))

Counters are held against the ledger as (value after the load) - (value before it), so
"before" must be a moment before the run's first event and "after" a moment after its last:
the ledger's phases bound the load, its meta may name an earlier start (log-ins before the
first phase) and the time of its final flush bounds the last event. The plateau is the phase
named steady/plateau/hold/sustain, else the longest phase: gauges are read there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codesync_load.errors import HarnessError

PLATEAU_NAMES = ("steady", "plateau", "hold", "sustain", "soak")


@dataclass(frozen=True)
class LoadWindow:
    start: float  # no event of the run before this
    end: float  # no event of the run after this
    plateau: tuple[float, float]
    phases: tuple[tuple[str, float, float], ...]

    @property
    def duration(self) -> float:
        return self.end - self.start

    @classmethod
    def from_ledger_doc(cls, doc: dict[str, Any], source: str = "ledger") -> LoadWindow:
        phases = []
        for raw in doc.get("phases") or []:
            if raw.get("end") is None:
                raise HarnessError(
                    f"{source}: phase {raw.get('name')!r} never ended (the run was killed?); verify a finished run"
                )
            phases.append((str(raw["name"]), float(raw["start"]), float(raw["end"])))
        if not phases:
            raise HarnessError(f"{source}: the ledger has no load phases; was it written by `codesync-load run`?")
        meta = doc.get("meta") or {}
        starts = [p[1] for p in phases]
        ends = [p[2] for p in phases]
        for key in ("started_at", "start"):
            if isinstance(meta.get(key), int | float):
                starts.append(float(meta[key]))
        for key in ("finished_at", "ended_at", "end"):
            if isinstance(meta.get(key), int | float):
                ends.append(float(meta[key]))
        if doc.get("complete") and isinstance(doc.get("written_at"), int | float):
            ends.append(float(doc["written_at"]))
        named = [p for p in phases if p[0].lower() in PLATEAU_NAMES]
        plateau = max(named or phases, key=lambda p: p[2] - p[1])
        return cls(min(starts), max(ends), (plateau[1], plateau[2]), tuple(phases))

    @classmethod
    def from_ledger_file(cls, path: Path) -> LoadWindow:
        try:
            doc = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise HarnessError(f"{path} does not exist; pass the run directory `codesync-load run` printed") from None
        except json.JSONDecodeError as err:
            raise HarnessError(f"{path} is not valid JSON ({err.msg}); regenerate the run") from None
        return cls.from_ledger_doc(doc, str(path))
