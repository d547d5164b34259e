"""Every verification of a run kept as its own result set, with the options it was given.

    >>> write_result_set(run_dir, results, inputs, options={"check": ["metrics-*"]}, target="on the embedded twin")
    PosixPath('reports/runs/r1/verify/sets/20261206T230102Z-4242')
    >>> [s["name"] for s in read_result_sets(run_dir)]          # latest first
    ['20261206T230102Z-4242', '20261206T225900Z-4100']

Why: a run is verified several times (the reconciliation, then `--live`, then
`--alert-scenarios`); each `verify` used to replace RUN/verify/results.json, so the report
showed only the last invocation. RUN/verify/results.json and junit.xml stay the latest set's
copy (what CI and older readers look at); RUN/verify/sets/<time>-<pid>/ keep every set.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from verify.checks.base import CheckResult
from verify.report import write_json, write_junit

SETS = Path("verify") / "sets"


def write_result_set(
    run_dir: Path,
    results: Sequence[CheckResult],
    inputs: dict[str, str],
    *,
    options: dict[str, Any],
    target: str,
) -> Path:
    """Write the set (results.json with its options and target, junit.xml) and the latest copies."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    base = Path(run_dir) / SETS / f"{stamp}-{os.getpid()}"
    folder, n = base, 1
    while folder.exists():  # two sets in one second of one process (a gate's trials, tests)
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    for where in (folder, Path(run_dir) / "verify"):
        write_junit(results, where / "junit.xml")
        path = write_json(results, where / "results.json", inputs)
        doc = json.loads(path.read_text())
        doc.update(set=folder.name, options=options, target=target)
        path.write_text(json.dumps(doc, indent=1, default=str))
    return folder


def _read_set(path: Path) -> dict[str, Any]:
    """One set's results.json; a file that cannot be read as a set is a set of its own whose one
    row FAILs naming the file (a report never passes over stored results it cannot read, and the
    file is left as it is for whoever repairs it)."""
    try:
        doc = json.loads(path.read_text())
        if not isinstance(doc, dict) or not isinstance(doc.get("checks", []), list):
            raise ValueError("not a verify result set (an object with a list of checks)")
    except (OSError, ValueError) as err:
        why = err.msg if isinstance(err, json.JSONDecodeError) else str(err)
        corrupt = f"{path} is corrupt ({why}); rerun `codesync-load verify` on the run"
        row = {"name": str(path), "group": "result-set", "verdict": "fail", "summary": corrupt}
        written = path.stat().st_mtime if path.exists() else 0.0
        return {"written_at": written, "corrupt": corrupt, "checks": [row]}
    return doc


def read_result_sets(run_dir: Path) -> list[dict[str, Any]]:
    """Every set of a run, latest first: {"name", "written_at", "options", "target", "exit_code",
    "checks", "corrupt"}; "corrupt" is "" unless the set's results.json could not be read.

    A run verified before sets existed has only RUN/verify/results.json: that is its one set.
    """
    sets = []
    root = Path(run_dir) / SETS
    for path in sorted(root.glob("*/results.json")) if root.is_dir() else []:
        doc = _read_set(path)
        doc.setdefault("set", path.parent.name)
        sets.append(doc)
    legacy = Path(run_dir) / "verify" / "results.json"
    if not sets and legacy.exists():
        doc = _read_set(legacy)
        doc.setdefault("set", "results.json")
        sets.append(doc)
    sets.sort(key=lambda d: (float(d.get("written_at") or 0), d["set"]), reverse=True)
    return [
        {
            "name": d["set"],
            "written_at": d.get("written_at"),
            "options": d.get("options") or {},
            "target": d.get("target") or "",
            "exit_code": d.get("exit_code"),
            "checks": list(d.get("checks") or []),
            "corrupt": d.get("corrupt", ""),
        }
        for d in sets
    ]
