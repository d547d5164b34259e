"""The gate file: every valid form parses to the exact gate, every invalid form is one line naming file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from codesync_load.gates import GateError, load_gates, parse_gate

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "g.toml"
    path.write_text(body)
    return path


def test_shipped_ci_gates_parse() -> None:
    spec = load_gates(REPO / "gates" / "ci.toml")
    texts = [g.text for g in spec.gates]
    assert "p95(edit_propagation) < 250ms" in texts
    assert "error_rate < 1%" in texts
    assert sum(1 for g in spec.gates if g.metric.side == "server") == 3
    names = [m.name for m in spec.baseline.metrics]
    assert names == ["autosave_put_median"]
    assert spec.baseline.alpha == 0.05 and spec.baseline.seed == 20261127


@pytest.mark.parametrize(
    ("text", "side", "kind", "op", "threshold"),
    [
        ("p95(edit_propagation) < 250ms", "client", "latency", "<", 0.25),
        ("p99.9(http) <= 1.5s", "client", "latency", "<=", 1.5),
        ("median(chat_rtt) < 20ms", "client", "latency", "<", 0.02),
        ("max(my_custom_s) != 3s", "client", "latency", "!=", 3.0),
        ("count(http) >= 10", "client", "count", ">=", 10.0),
        ("error_rate < 1%", "client", "ratio", "<", 0.01),
        ("error_rate < 0.02", "client", "ratio", "<", 0.02),
        ("failures == 0", "client", "count", "==", 0.0),
        ('server: sum(rate(x{code!="200"}[$__range])) > 2', "server", "promql", ">", 2.0),
        (
            "server: histogram_quantile(0.95, sum by (le) (rate(h_bucket[$__range]))) < 250ms",
            "server",
            "promql",
            "<",
            0.25,
        ),
    ],
)
def test_valid_gates(text: str, side: str, kind: str, op: str, threshold: float) -> None:
    gate = parse_gate(text, "f:1")
    assert (gate.metric.side, gate.metric.kind, gate.op) == (side, kind, op)
    assert gate.threshold == pytest.approx(threshold)


def test_server_gate_keeps_label_matchers_with_operators() -> None:
    gate = parse_gate('server: up{job!="a",x=~"b"} >= 1', "f:1")
    assert gate.metric.promql == 'up{job!="a",x=~"b"}'
    assert gate.holds(1.0) and not gate.holds(0.0)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('"p95(http)"', "has no comparison with a number at its end; write e.g. p95(http) < 250ms"),
        ('"p95(http) < 250"', "p95(http) is a latency; give the threshold a unit, e.g. 250ms or 250s"),
        ('"p95(nosuch) < 1s"', "unknown sample series 'nosuch'"),
        ('"q95(http) < 1s"', "unknown function 'q95'; use pNN"),
        ('"p100(http) < 1s"', "percentile p100 is out of range"),
        ('"error_rate < 5ms"', "error_rate is a ratio; write the threshold as 1% or 0.01, not ms"),
        ('"error_rate < 5"', "error_rate is a ratio between 0 and 1; write 5% or a fraction"),
        ('"failures < 2%"', "failures is a count; write the threshold as a plain number, not %"),
        ('"bogus < 2"', "'bogus' is not a gate metric"),
        ('"server: < 2"', "`server:` needs a PromQL expression"),
        ('"server: sum(rate(x[5m]) < 2"', "unbalanced brackets"),
    ],
)
def test_invalid_gate_is_one_line_naming_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = write(tmp_path, f'# gates\ngates = [\n  "error_rate < 1%",\n  {line},\n]\n')
    with pytest.raises(GateError) as err:
        load_gates(path)
    text = str(err.value)
    assert text.startswith(f"{path}:4: ")
    assert message in text
    assert "\n" not in text


def test_file_level_mistakes(tmp_path: Path) -> None:
    cases = {
        'gates = ["failures == 0",\n  "a" "b"]\n': (2, "not valid TOML"),
        "gates = [\n": (1, "not valid TOML"),
        "gates = []\n": (1, "`gates` must be a non-empty list of strings"),
        '\ngate = ["failures == 0"]\n': (2, "unknown key 'gate'"),
        'gates = ["failures == 0"]\nchecks = "x"\n': (2, "`checks` must be a list of check-name globs"),
        'gates = ["failures == 0"]\n[baseline]\nalpha = 2\n': (3, "alpha = 2 is out of range"),
        'gates = ["failures == 0"]\n[baseline]\nresamples = 10.5\n': (3, "resamples must be a whole number"),
        'gates = ["failures == 0"]\n[baseline]\ntrials = 3\n': (3, "unknown [baseline] key 'trials'"),
        'gates = ["failures == 0"]\n[baseline]\nmetrics = ["p95(http) < 1s"]\n': (3, "has a threshold"),
    }
    for body, (line, message) in cases.items():
        path = write(tmp_path, body)
        with pytest.raises(GateError) as err:
            load_gates(path)
        assert str(err.value).startswith(f"{path}:{line}: "), (body, str(err.value))
        assert message in str(err.value), (body, str(err.value))


def test_missing_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(GateError, match=r"does not exist; pass --gates FILE"):
        load_gates(tmp_path / "nope.toml")


def test_named_baseline_metrics(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'gates = ["failures == 0"]\n[baseline]\nalpha = 0.01\n[baseline.metrics]\nprop = "p95(edit_propagation)"\n'
        "put = 'server: sum(x)'\n",
    )
    spec = load_gates(path)
    assert [(m.name, m.side) for m in spec.baseline.metrics] == [("prop", "client"), ("put", "server")]
    assert spec.baseline.alpha == 0.01


def test_named_gates_and_their_mistakes(tmp_path: Path) -> None:
    path = write(tmp_path, 'gates = [\n  {name = "put-p95", gate = "server: x < 250ms"},\n  "failures == 0",\n]\n')
    spec = load_gates(path)
    assert [(g.name, g.text, g.source) for g in spec.gates] == [
        ("put-p95", "server: x < 250ms", f"{path}:2"),
        ("failures == 0", "failures == 0", f"{path}:3"),
    ]
    cases = {
        'gates = [\n  {name = "a b", gate = "failures == 0"},\n]\n': "gate name 'a b' may hold only letters",
        (
            'gates = [\n  {name = "a", gate = "failures == 0"},\n  {name = "a", gate = "requests > 1"},\n]\n'
        ): "gate 'a' is listed twice",
        'gates = [\n  {gate = "failures == 0"},\n]\n': 'a gate is a string or {name = "...", gate = "..."}',
    }
    for body, message in cases.items():
        path = write(tmp_path, body)
        with pytest.raises(GateError) as err:
            load_gates(path)
        assert message in str(err.value) and str(err.value).startswith(f"{path}:"), str(err.value)
