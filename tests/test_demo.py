"""`./run` (codesync-load demo) on the embedded twin: stack up, ci load, verification, gates,
report, stack down; it prints where Prometheus and Alertmanager listen and passes when healthy."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from codesync_load.stack.ports import accepts_connections
from tests.gates.test_gate_command import REPO, pytestmark  # noqa: F401  (the same skip rule)
from tests.gates.test_gate_command import gate as run_cli_gate_style


def _refused(url: str) -> bool:
    parts = urlsplit(url)
    return not accepts_connections(parts.port, parts.hostname, timeout=1)


def test_demo_passes_on_the_healthy_twin_and_leaves_nothing_running(tmp_path: Path) -> None:
    code, lines = run_cli_gate_style(tmp_path, timeout=300, command="demo")
    assert code == 0, "\n".join(lines[-60:])
    ready = next(line for line in lines if line.startswith("stack ready: "))
    urls = dict(re.findall(r"(api|yjs|prometheus|alertmanager) (\S+)", ready))
    assert set(urls) == {"api", "yjs", "prometheus", "alertmanager"}, ready
    # The error-tracker witness judged the run (the stack's Bugsink), it did not skip.
    tracked = [line for line in lines if line.startswith("server-errors-reach-tracker ")]
    assert len(tracked) == 1 and tracked[0].split()[1] == "PASS", "\n".join(tracked or lines[-60:])
    # The uptime witness judged it too: the blackbox probe of the twin's /health said up while
    # every user was served (it did not skip: --strict would have failed the gate).
    uptime = [line for line in lines if line.startswith("uptime-agrees-with-users ")]
    assert len(uptime) == 1 and uptime[0].split()[1] == "PASS", "\n".join(uptime or lines[-60:])
    assert "/health: the probe agreed with the users (" in uptime[0], uptime[0]
    last = lines[-1]
    # Grafana is the one thing the local stack lacks; the verdict line names it as not applicable
    # (the demo runs --strict: nothing that applies went unjudged).
    assert last.startswith(
        "gate PASS on the embedded twin: every gate and every judged check passed; "
        "1 not applicable: dashboard-grafana-matches-prometheus; report "
    ), last
    report = Path(last.rsplit("report ", 1)[1])
    assert (REPO / report if not report.is_absolute() else report).is_file()
    for name, url in urls.items():
        assert _refused(url), f"{name} still listens at {url} after the demo"
