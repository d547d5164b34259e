"""The twin's own metric declarations held against the contract (issue #12, item 8).

The twin declares its families in its code (twin/metrics.py DECLARATIONS), as CodeSync does
with prom-client; the verifier checks every target against the contract file. Built from that
file, the twin could never show a wrong contract entry; declared apart, the two are independent
witnesses, and this test names every difference between them.
"""

from __future__ import annotations

from codesync_load.contract import load_contract
from twin.faults import ActiveFaults
from twin.metrics import DECLARATIONS, TwinMetrics


def shape(name: str, type_: str, labels: tuple[str, ...], process: str, buckets: tuple[float, ...]) -> tuple:
    return (name, type_, tuple(labels), process, tuple(float(b) for b in buckets))


def test_the_twin_declares_exactly_the_contracts_families() -> None:
    contract = {s.name: shape(s.name, s.type, s.labels, s.process, s.buckets) for s in load_contract().metrics}
    twin = {d.name: shape(d.name, d.type, d.labels, d.process, d.buckets) for d in DECLARATIONS}
    assert sorted(set(twin) - set(contract)) == []  # declared by the twin, unknown to the contract
    assert sorted(set(contract) - set(twin)) == []  # in the contract, not declared by the twin
    assert [twin[n] for n in sorted(twin) if twin[n] != contract[n]] == []


def test_the_twin_does_not_read_the_contract_file() -> None:
    import twin.metrics

    source = open(twin.metrics.__file__).read()  # noqa: SIM115
    assert "codesync_load.contract" not in source and "load_contract" not in source


def test_each_process_exports_its_declared_families() -> None:
    for process in ("api", "yjs"):
        exposition = TwinMetrics(process, ActiveFaults()).exposition().decode()
        declared = {f"# TYPE {d.name} {d.type}" for d in DECLARATIONS if d.exported_by(process)}
        missing = sorted(line for line in declared if line not in exposition)
        assert missing == [], f"{process}: {missing}"
