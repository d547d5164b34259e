"""JUnit XML for CI systems: one <testsuite> per group (checks, gates, baseline) in one file.

    >>> write_junit_suites({"verify": checks, "gates": gate_results, "baseline": comparisons}, path)
    >>> ET.parse(path).getroot().tag
    'testsuites'

Why not verify/report.py's write_junit: that writes the checks as one suite per file, while
a gate run has several groups (and per-trial check suites) that a CI system should show in
one artifact. Each test case's text is CheckResult.render(), the same text the CLI prints.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def write_junit_suites(suites: Mapping[str, Sequence[Any]], path: Path, name: str = "codesync-gate") -> Path:
    """Write CheckResults grouped by suite name; verdicts map to failure/error/skipped/pass."""
    root = ET.Element("testsuites", name=name)
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    for suite_name, results in suites.items():
        counts = {
            "tests": len(results),
            "failures": sum(1 for r in results if r.verdict == "fail"),
            "errors": sum(1 for r in results if r.verdict == "error"),
            "skipped": sum(1 for r in results if r.verdict == "skip"),
        }
        for key, value in counts.items():
            totals[key] += value
        suite = ET.SubElement(
            root,
            "testsuite",
            name=suite_name,
            timestamp=stamp,
            time=f"{sum(r.seconds for r in results):.3f}",
            **{k: str(v) for k, v in counts.items()},
        )
        for r in results:
            case = ET.SubElement(suite, "testcase", classname=suite_name, name=r.name, time=f"{r.seconds:.3f}")
            if r.verdict == "fail":
                ET.SubElement(case, "failure", message=r.summary).text = r.render()
            elif r.verdict == "error":
                ET.SubElement(case, "error", message=r.summary).text = r.render()
            elif r.verdict == "skip":
                ET.SubElement(case, "skipped", message=r.summary)
            else:
                ET.SubElement(case, "system-out").text = r.render()
    for key, value in totals.items():
        root.set(key, str(value))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path
