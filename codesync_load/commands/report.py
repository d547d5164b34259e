"""`codesync-load report DIR`: HTML, Markdown and JSON reports of a run or gate directory.

    $ codesync-load report reports/runs/20261127T050000Z-smoke
    reports/runs/20261127T050000Z-smoke/report/report.html

DIR is a run directory (ledger.json, and verify/results.json when `codesync-load verify`
ran) or a gate directory (gate.json and its trial-N run directories). The reports land in
DIR/report/ (or --out); the last line printed is the HTML path.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from codesync_load.errors import HarnessError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write HTML, Markdown and JSON reports of a run or gate directory",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("run_dir", type=Path, metavar="DIR", help="run directory or gate directory")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default DIR/report)")
    parser.add_argument(
        "--baseline", type=Path, default=None, metavar="OTHER_RUN", help="compare every gate metric with this run"
    )
    parser.add_argument("--gates", type=Path, default=None, help="gate file of --baseline (default gates/ci.toml)")
    parser.set_defaults(func=run)


def target_label(where: Path, trials: list[Path]) -> str:
    """The target the report's results judged: gate.json's, else the runs' target.json."""
    labels = []
    gate = where / "gate.json"
    sources = [gate] if gate.exists() else [Path(t) / "target.json" for t in trials]
    for path in sources:
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        doc = doc.get("target", doc) if path.name == "gate.json" else doc
        label = (doc or {}).get("label") or (
            f"on api {doc.get('api_url')}, yjs {doc.get('yjs_url')}" if doc and doc.get("api_url") else None
        )
        if label and label not in labels:
            labels.append(label)
    return "; ".join(labels) or "on a target the run did not record"


def run(args: argparse.Namespace) -> int:
    from reports import write_reports
    from reports.build import results_from_run

    where: Path = args.run_dir
    if not where.is_dir():
        raise HarnessError(f"{where} is not a directory; pass the directory `codesync-load run` or `gate` printed")
    gate_doc = where / "gate.json"
    if gate_doc.exists():
        try:
            trials = [Path(t) for t in json.loads(gate_doc.read_text()).get("trials") or []]
        except ValueError:
            raise HarnessError(f"{gate_doc} is not valid JSON; rerun the gate") from None
    elif (where / "ledger.json").exists():
        trials = [where]
    else:
        raise HarnessError(f"{where} holds neither ledger.json nor gate.json; pass a run or gate directory")
    found = results_from_run(where)
    label = target_label(where, trials)
    notes: list[str] = [f"target: {label.removeprefix('on ')}"]
    notes += [f"{len(found['sets'])} verify result sets, latest first"] * bool(found["sets"])
    if getattr(args, "baseline", None) is not None:
        from codesync_load.gates import default_gate_file
        from reports.compare import compare_runs

        if not args.baseline.is_dir():
            raise HarnessError(f"--baseline {args.baseline} is not a directory; pass another run directory")
        compared, compare_notes = compare_runs(trials[-1], args.baseline, args.gates or default_gate_file("ci"))
        found["baseline"] = [*found["baseline"], *compared]
        notes += compare_notes
    paths = write_reports(
        trials,
        args.out or where / "report",
        **found,
        title=f"codesync-load report: {where.name} {label}",
        notes=notes,
    )
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:  # a CI job's summary page shows the Markdown (its images are in the artifact)
        with open(summary, "a") as handle:
            handle.write(paths["markdown"].read_text())
    print(paths["markdown"])
    print(paths["json"])
    print(paths["html"])
    corrupt = [s["corrupt"] for s in found["sets"] if s.get("corrupt")]
    for line in corrupt:  # written into the report as a FAIL row too; the file is left untouched
        print(f"error: {line}", file=sys.stderr)
    return 2 if corrupt else 0
