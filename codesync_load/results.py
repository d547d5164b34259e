"""What a check, a gate or a baseline comparison found: the result types every layer shares.

    >>> result = CheckResult.failed("3 series never moved", measured="3 of 12", evidence=table)
    >>> result.ok
    False

Why in the core: the verification suite (verify/), the gates (codesync_load/gates.py) and the
baseline comparison (codesync_load/baseline.py) all report in this one shape, so the CLI, the
JUnit writer and the reports list them alike. The core cannot import verify (verify depends on
the core), so the shape lives here and verify re-exports it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

Verdict = Literal["pass", "fail", "skip", "error"]


@dataclass
class Evidence:
    """A small table: the rows that make a verdict checkable by a reader."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    def add(self, *row: Any) -> None:
        self.rows.append(tuple(row))

    def render(self, max_rows: int = 60, max_width: int = 70) -> str:
        """Plain-text table, widths fitted to the content (cells clipped at `max_width`)."""

        def cell(value: Any) -> str:
            text = "" if value is None else (f"{value:g}" if isinstance(value, float) else str(value))
            text = " ".join(text.split())
            return text if len(text) <= max_width else text[: max_width - 3] + "..."

        rows = [[cell(v) for v in row] for row in self.rows[:max_rows]]
        header = list(self.columns)
        widths = [max([len(header[i])] + [len(r[i]) for r in rows if i < len(r)]) for i in range(len(header))]
        lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
        lines.append("  ".join("-" * w for w in widths))
        for row in rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())
        if len(self.rows) > max_rows:
            lines.append(f"... {len(self.rows) - max_rows} more rows")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"columns": list(self.columns), "rows": [list(r) for r in self.rows]}


@dataclass
class CheckResult:
    """What one check found: verdict, one-line summary, measured vs expected, tolerance, evidence."""

    verdict: Verdict
    summary: str
    measured: str = ""
    expected: str = ""
    tolerance: str = ""
    evidence: Evidence | None = None
    name: str = ""
    inputs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    # For a skip only: True = the check applies to this target but could not judge it (missing
    # data, nothing to judge); False = it does not apply here (no Grafana in this stack, live
    # checks not asked for). Neither is a pass; under --strict the first kind fails.
    applies: bool = True

    @classmethod
    def passed(cls, summary: str, **kw: Any) -> CheckResult:
        return cls("pass", summary, **kw)

    @classmethod
    def failed(cls, summary: str, **kw: Any) -> CheckResult:
        return cls("fail", summary, **kw)

    @classmethod
    def skipped(cls, summary: str, **kw: Any) -> CheckResult:
        """Not judged: the check applies (unless `applies=False` is passed) but could not judge."""
        return cls("skip", summary, **kw)

    @classmethod
    def not_applicable(cls, summary: str, **kw: Any) -> CheckResult:
        """The check does not apply to this target or invocation (listed, never counted as passed)."""
        return cls("skip", summary, applies=False, **kw)

    @classmethod
    def nothing_to_judge(cls, what: str, **kw: Any) -> CheckResult:
        """An empty input (0 rules, 0 series, a run with no traffic): not judged, never a pass."""
        return cls("skip", f"nothing to judge: {what}", **kw)

    @property
    def ok(self) -> bool:
        """Passed. A skip is not ok: a verdict never says PASS about what it did not judge."""
        return self.verdict == "pass"

    @property
    def not_judged(self) -> bool:
        """A skip of a check that applies here (missing data, nothing to judge)."""
        return self.verdict == "skip" and self.applies

    @property
    def shown_verdict(self) -> str:
        """The verdict as tables show it: PASS, FAIL, ERROR, SKIP (not judged), N/A (not applicable)."""
        return "N/A" if self.verdict == "skip" and not self.applies else self.verdict.upper()

    def render(self) -> str:
        """Multi-line text for a failure message or the CLI's details."""
        lines = [f"{self.name}: {self.shown_verdict}: {self.summary}"]
        for label, value in (("measured", self.measured), ("expected", self.expected), ("tolerance", self.tolerance)):
            if value:
                lines.append(f"  {label}: {value}")
        if self.inputs:
            lines.append("  inputs: " + ", ".join(f"{k}={v}" for k, v in self.inputs.items()))
        if self.evidence is not None and self.evidence.rows:
            lines.append("")
            lines.extend("  " + line for line in self.evidence.render().splitlines())
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": self.verdict,
            "summary": self.summary,
            "measured": self.measured,
            "expected": self.expected,
            "tolerance": self.tolerance,
            "inputs": dict(self.inputs),
            "seconds": round(self.seconds, 3),
            "evidence": self.evidence.to_dict() if self.evidence else None,
            "applies": self.applies,
        }


def first_failure(failures: Iterable[tuple[object, str]], passed: str, **details: Any) -> CheckResult:
    """The verdict of a check with several ways to fail, tried in order; all share `details`.

        >>> first_failure([(not fired, "never fired"), (wrong, "wrong labels")], "fired",
        ...               measured=measured, expected=expected, evidence=evidence)

    Why: a check that can fail for several reasons reports the first that applies, with the
    same measured/expected/evidence whichever it is; the ladder of `if ...: return failed(...)`
    stays a list of (condition, summary) pairs next to each other.
    """
    for failing, summary in failures:
        if failing:
            return CheckResult.failed(summary, **details)
    return CheckResult.passed(passed, **details)
