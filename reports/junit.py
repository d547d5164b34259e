"""JUnit XML for CI systems: one <testsuite> per group (checks, gates, baseline) in one file.

    >>> write_junit_suites({"verify": checks, "gates": gate_results, "baseline": comparisons}, path)
    >>> ET.parse(path).getroot().tag
    'testsuites'

Why not verify/report.py's write_junit: that writes the checks as one suite per file, while
a gate run has several groups (and per-trial check suites) that a CI system should show in
one artifact. Both build each suite with verify.report.junit_suite, so each test case's text
is CheckResult.render(), the same text the CLI prints.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from verify.report import junit_stamp, junit_suite, write_xml


def write_junit_suites(suites: Mapping[str, Sequence[Any]], path: Path, name: str = "codesync-gate") -> Path:
    """Write CheckResults grouped by suite name; verdicts map to failure/error/skipped/pass.

    Each suite is verify.report.junit_suite with the group name as classname; the root
    carries the totals over all suites.
    """
    root = ET.Element("testsuites", name=name)
    stamp = junit_stamp()
    built = [
        junit_suite(results, suite_name, lambda _r, n=suite_name: n, stamp, root)
        for suite_name, results in suites.items()
    ]
    for key in ("tests", "failures", "errors", "skipped"):
        root.set(key, str(sum(int(suite.get(key) or 0) for suite in built)))
    return write_xml(root, path)
