"""The clients inside a gevent-patched Locust process, reporting through `locust_events`.

The probe runs as a subprocess (importing Locust in pytest would patch pytest's process);
it prints every request event a real `locust.env.Environment` received.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_locust_transport_and_events_report_each_call_once_by_template(twin) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("locust_probe.py")), twin.api_url, twin.yjs_url],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(done.stdout.strip().splitlines()[-1])
    events = record["events"]
    named = [(e["request_type"], e["name"], e["exception"]) for e in events]
    assert (
        named
        == [
            ("GET", "/health", None),  # fetched first for the CSRF pair
            ("POST", "/api/auth/register", None),
            ("POST", "/api/sessions", None),
            ("PUT", "/api/sessions/:id/files/:path/content", None),
            ("GET", "/api/sessions/:id", "404 NOT_FOUND"),
            ("SIO", "connect", None),
            ("SIO", "chat round trip", None),
        ]
        + [("YJS", "propagation", None)] * 5
    )
    assert all(isinstance(e["response_time"], float) and e["response_time"] > 0 for e in events)
    # sub-millisecond precision survives: not every time is a whole number of milliseconds
    assert any(e["response_time"] != int(e["response_time"]) for e in events)
    assert events[1]["response_length"] > 0
    assert record["text"] == "43210"
    assert record["cookies"] == ["csrf-token", "sessionId", "token"]
