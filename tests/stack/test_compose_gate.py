"""CI's container job: `codesync-load gate --profile ci --backend compose` on this machine's
engine (podman with the local images here), as a real child process. It passes (exit 0), it
judged the containerised stack, and afterwards the engine holds no container, pod or network
of it and no process of the gate is left.

    $ ./test tests/stack/test_compose_gate.py -q     # ~3 min warm on 2 shared cores

The images come from the `local_images` fixture (built once per machine, cached outside the
git tree); where podman cannot run, the skip line says why.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from codesync_load.stack.engine import Engine
from tests.stack._support import REPO

# A cold machine builds the images during the first test (~20 min on 2 busy cores); warm, seconds.
pytestmark = [pytest.mark.container, pytest.mark.timeout(2400)]
GATE = [
    sys.executable,
    "-m",
    "codesync_load.cli",
    "gate",
    "--profile",
    "ci",
    "--backend",
    "compose",
    "--bcrypt-rounds",
    "4",
]


def test_the_ci_gate_passes_on_the_containerised_stack_and_leaves_nothing(local_images: Engine, tmp_path: Path) -> None:
    before = set(local_images.run("ps", "-a", "--format", "{{.Names}}").stdout.split())
    out = tmp_path / "gate"
    log = tmp_path / "gate.log"
    with open(log, "w") as handle:
        proc = subprocess.Popen(
            [*GATE, "--out", str(out)],
            cwd=REPO,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=600)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log.read_text()
    assert code == 0, text[-4000:]
    ready = next(line for line in text.splitlines() if line.startswith("stack ready: "))
    # The uptime witness is judged here too (the blackbox-exporter container): only Grafana,
    # which the local images lack, is not applicable.
    uptime = next(line for line in text.splitlines() if line.startswith("uptime-agrees-with-users "))
    assert uptime.split()[1] == "PASS", uptime
    assert "; 1 not applicable: dashboard-grafana-matches-prometheus; report " in text, text[-2000:]
    # The stack the gate judged is the containerised one: its Prometheus port is the one the
    # compose launcher gave the prometheus container (the wrapper testcontainers ran names it).
    wrapper = (out / "stack" / "compose" / "compose-cli").read_text()
    port = re.search(r"^export CODESYNC_PROMETHEUS_PORT=(\d+)$", wrapper, re.M)
    assert port, wrapper
    assert f"prometheus http://127.0.0.1:{port.group(1)} " in ready + " ", ready
    after = set(local_images.run("ps", "-a", "--format", "{{.Names}}").stdout.split())
    assert after - before == set()
    assert local_images.run("pod", "ps", "-q").stdout.strip() == ""
    children = [p for p in psutil.process_iter(["cmdline"]) if str(out) in " ".join(p.info["cmdline"] or [])]
    assert children == []
