"""The verdict table on the terminal, the JUnit XML for CI, and a JSON record for the reports.

    >>> print(render_table(results))
    check                          verdict  summary
    rules-series-exported          FAIL     4 series used by rules are not exported: ...
    >>> write_junit(results, run_dir / "verify-junit.xml")

The same check names appear in all three, and in the pytest suite's test ids.
"""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from pathlib import Path

from verify.checks.base import REGISTRY, CheckResult


def exit_code(results: Sequence[CheckResult]) -> int:
    """0 every check passed (skips named, see not_judged_lines), 1 a check failed, 2 a check could
    not run (a bug, or a check selected explicitly that could not judge; see strict_verdicts)."""
    if any(r.verdict == "error" for r in results):
        return 2
    return 1 if any(r.verdict == "fail" for r in results) else 0


def strict_verdicts(results: Sequence[CheckResult], strict: bool, explicit: Collection[str] = ()) -> list[CheckResult]:
    """The results with the skip rules applied: a skipped check named in `explicit` (selected
    with --check) becomes an error, since the user asked for a verdict it cannot give; under
    `strict` a skipped check that applies to the target (missing data, nothing to judge) fails.
    A check that does not apply (no Grafana) stays a skip, listed as not applicable.

    Why a transformation rather than a flag on exit_code: the JUnit file, results.json, the
    reports and the table then all say the same thing about the same check.
    """
    out = []
    for r in results:
        if r.verdict == "skip" and r.name in explicit:
            why = "not applicable here" if not r.applies else "not judged"
            r = replace(r, verdict="error", summary=f"selected with --check but {why}: {r.summary}")
        elif r.verdict == "skip" and strict and r.applies:
            r = replace(r, verdict="fail", summary=f"not judged (fails under --strict): {r.summary}")
        out.append(r)
    return out


def not_judged_lines(results: Sequence[CheckResult]) -> list[str]:
    """One line per check that gave no verdict, with why: not judged (applies) or not applicable."""
    return [
        f"{r.name}: {'not judged' if r.applies else 'not applicable'}: {r.summary}"
        for r in results
        if r.verdict == "skip"
    ]


def render_table(results: Sequence[CheckResult], width: int = 100) -> str:
    name_w = max([len("check")] + [len(r.name) for r in results])
    lines = [f"{'check'.ljust(name_w)}  verdict  summary", f"{'-' * name_w}  -------  {'-' * 7}"]
    for r in results:
        summary = r.summary if len(r.summary) <= width else r.summary[: width - 3] + "..."
        lines.append(f"{r.name.ljust(name_w)}  {r.shown_verdict.ljust(7)}  {summary}")
    counts = {
        "pass": sum(1 for r in results if r.verdict == "pass"),
        "fail": sum(1 for r in results if r.verdict == "fail"),
        "error": sum(1 for r in results if r.verdict == "error"),
        "not judged": sum(1 for r in results if r.not_judged),
        "not applicable": sum(1 for r in results if r.verdict == "skip" and not r.applies),
    }
    lines.append("")
    lines.append(", ".join(f"{n} {v}" for v, n in counts.items() if n) or "no checks ran")
    skipped = not_judged_lines(results)
    if skipped:  # never a bare count: each check that gave no verdict, and why
        lines.append("no verdict (not counted as passed):")
        lines.extend(f"  {line}" for line in skipped)
    return "\n".join(lines)


def junit_suite(
    results: Sequence[CheckResult],
    name: str,
    classname: Callable[[CheckResult], str],
    stamp: str,
    parent: ET.Element | None = None,
) -> ET.Element:
    """One <testsuite> of CheckResults; verdicts map to failure/error/skipped/system-out.

    Shared by write_junit (the suite is the root) and reports.junit (one suite per group
    under <testsuites>), so both CI artifacts show a check the same way.
    """
    attrs = {
        "name": name,
        "tests": str(len(results)),
        "failures": str(sum(1 for r in results if r.verdict == "fail")),
        "errors": str(sum(1 for r in results if r.verdict == "error")),
        "skipped": str(sum(1 for r in results if r.verdict == "skip")),
        "time": f"{sum(r.seconds for r in results):.3f}",
        "timestamp": stamp,
    }
    suite = ET.Element("testsuite", attrs) if parent is None else ET.SubElement(parent, "testsuite", attrs)
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=classname(r), name=r.name, time=f"{r.seconds:.3f}")
        if r.verdict == "fail":
            ET.SubElement(case, "failure", message=r.summary).text = r.render()
        elif r.verdict == "error":
            ET.SubElement(case, "error", message=r.summary).text = r.render()
        elif r.verdict == "skip":
            ET.SubElement(case, "skipped", message=f"{'not judged' if r.applies else 'not applicable'}: {r.summary}")
        else:
            ET.SubElement(case, "system-out").text = r.render()
    return suite


def junit_stamp() -> str:
    """The UTC timestamp JUnit's testsuite attribute wants (no zone suffix)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())


def write_xml(root: ET.Element, path: Path) -> Path:
    """Write `root` with an XML declaration, creating the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path


def _check_class(result: CheckResult) -> str:
    group = REGISTRY[result.name].group if result.name in REGISTRY else "verify"
    return f"verify.{group}"


def write_junit(results: Sequence[CheckResult], path: Path, suite: str = "codesync-verify") -> Path:
    """The checks as one <testsuite> file; classname is verify.<group> of each check."""
    return write_xml(junit_suite(results, suite, _check_class, junit_stamp()), path)


def write_json(results: Sequence[CheckResult], path: Path, inputs: dict[str, str]) -> Path:
    doc = {
        "schema": "codesync-verify/1",
        "written_at": time.time(),
        "exit_code": exit_code(results),
        "inputs": inputs,
        "checks": [r.to_dict() for r in results],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, default=str))
    return path
