"""The load model's way back in after a dropped Socket.IO connection (issue #10, Deliver 3).

CodeSync lets only the owner and ACTIVE participants write, and a Socket.IO disconnect sets
`left_at` on the participant row. An editor whose connection the server dropped must be
invited and accept again before its next autosave, or every later save is a 403. The twin
enforces both rules; its `socketio-drop=S` fault disconnects each user's first Socket.IO
connection S s after connect, as a proxy reload does. The smoke profile's two editors share
one session: the second is invited (the first created it and owns it), so its drop and its
later autosaves are the path under test.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from _loadrun import locust_argv, run_locust, scrape, total

from codesync_load.ledger import Ledger
from codesync_load.twin_process import start_twin
from tests.conftest import ISOLATED_ENV

PUT_CONTENT = ("PUT", "/api/sessions/:id/files/:path/content")
ACCEPT = ("POST", "/api/invitations/accept/:token")


def test_an_editor_dropped_by_the_server_rejoins_as_a_participant_and_its_saves_are_not_refused(
    tmp_path: Path,
) -> None:
    twin = start_twin(
        tmp_path, faults=["socketio-drop=3"], env=ISOLATED_ENV, extra_args=["--bcrypt-rounds", "4"], name="twin"
    )
    try:
        run_dir = tmp_path / "run"
        result = run_locust(locust_argv(twin, run_dir, "--profile", "smoke"), tmp_path / "locust.out", timeout=120)
        api = scrape(twin.api_url)
    finally:
        twin.stop()
    ledger = Ledger.read(run_dir / "ledger.json")
    assert ledger.get("connection", "socketio", "opened") == total(
        api, "codesync_websocket_connections_total", type="socketio"
    )
    # its saves after the drop were accepted: no write refused, on any route
    refused = ledger.get("http", *PUT_CONTENT, 403)
    assert refused == 0, f"{refused} autosaves refused with 403 after a drop"
    assert ledger.get("http", *PUT_CONTENT, 200) >= 2
    assert ledger.total("http", status=403) == 0 and ledger.total("unexpected") == 0
    # because an invited editor came back in after its drop: invited and accepted again, as
    # the product's storage shows (one accepted invitation per join, two for the same editor)
    with sqlite3.connect(tmp_path / "twin.sqlite3") as db:
        again = db.execute(
            "SELECT email, COUNT(*) FROM session_invitations WHERE accepted_at IS NOT NULL "
            "GROUP BY session_id, email HAVING COUNT(*) > 1"
        ).fetchall()
    assert again, f"no editor was invited again after its drop; locust output:\n{result.output[-3000:]}"
    assert ledger.get("http", "POST", "/api/invitations", 201) == ledger.get("http", *ACCEPT, 200)
