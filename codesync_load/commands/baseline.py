"""`codesync-load baseline save|compare`: store trials as a baseline, or compare trials with one.

    $ codesync-load baseline save reports/runs/gate-1 --out baselines/ci
    $ codesync-load baseline compare reports/runs/gate-2 --baseline baselines/ci

The statistics (Mann-Whitney U, Wilcoxon signed-rank, the bootstrap interval) and the baseline
file are the core's (codesync_load/baseline.py); this module only parses the command line and
prints the comparison.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codesync_load.baseline import compare_to_baseline, load_baseline, read_values, save_baseline
from codesync_load.errors import HarnessError
from codesync_load.gates import BaselineSettings, default_gate_file, load_gates


def register(subparsers: Any) -> None:
    """`codesync-load baseline save RUN_DIR... --out DIR` and `baseline compare RUN_DIR... --baseline DIR`."""
    parser = subparsers.add_parser(
        "baseline",
        help="save trials as a baseline, or compare trials with one (Mann-Whitney U, bootstrap CI)",
        description="Baselines for the gate's comparison: per-trial metric values and a stated test.",
    )
    actions = parser.add_subparsers(dest="baseline_action", metavar="ACTION")
    actions.required = True
    save = actions.add_parser("save", help="write DIR/baseline.json from run (or gate) directories")
    save.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    save.add_argument("--out", type=Path, required=True, help="baseline directory to write")
    save.add_argument("--gates", type=Path, default=None, help="gate file whose [baseline] metrics are saved")
    save.add_argument("--profile", default="ci", help="profile whose gate file is the default (gates/<P>.toml)")
    save.set_defaults(func=_run_save)
    comp = actions.add_parser("compare", help="compare run (or gate) directories with a saved baseline")
    comp.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    comp.add_argument("--baseline", type=Path, required=True, help="baseline directory (or baseline.json)")
    comp.add_argument("--gates", type=Path, default=None, help="gate file with the [baseline] settings")
    comp.add_argument("--profile", default="ci", help="profile whose gate file is the default (gates/<P>.toml)")
    comp.set_defaults(func=_run_compare)


def expand_run_dirs(paths: Sequence[Path]) -> list[Path]:
    """Run directories, with a gate directory (holding gate.json) standing for its trials."""
    out: list[Path] = []
    for path in paths:
        path = Path(path)
        gate_doc = path / "gate.json"
        if gate_doc.exists():
            try:
                out += [Path(t) for t in json.loads(gate_doc.read_text()).get("trials") or []]
            except ValueError:
                raise HarnessError(f"{gate_doc} is not valid JSON; rerun the gate") from None
        elif not path.is_dir():
            raise HarnessError(f"{path} is not a directory; pass run directories of `codesync-load run` or `gate`")
        else:
            out.append(path)
    return out


def _settings(args: Any) -> BaselineSettings:
    spec = load_gates(args.gates or default_gate_file(args.profile))
    if not spec.baseline.metrics:
        raise HarnessError(f"{spec.path} lists no [baseline] metrics; add `metrics = [...]` under [baseline]")
    return spec.baseline


def _run_save(args: Any) -> int:
    settings = _settings(args)
    path = save_baseline(expand_run_dirs(args.run_dirs), args.out, settings.metrics)
    print(path)
    return 0


def _run_compare(args: Any) -> int:
    settings = _settings(args)
    runs = expand_run_dirs(args.run_dirs)
    candidate: dict[str, list[float]] = {m.name: [] for m in settings.metrics}
    for run_dir in runs:
        for text, value in read_values(run_dir, settings.metrics).items():
            if value is not None:
                candidate[text].append(value)
    results = compare_to_baseline(load_baseline(args.baseline), candidate, settings, str(args.baseline))
    for result in results:
        print(result.render())
    failed = [r for r in results if r.verdict != "pass"]
    print(f"baseline {'FAIL' if failed else 'PASS'}: {len(failed)} of {len(results)} metrics regressed")
    return 1 if failed else 0
