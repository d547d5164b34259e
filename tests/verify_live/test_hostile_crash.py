"""hostile-inputs-harmless promises "never crash": a WebSocket closed with 1011 (internal error)
on a hostile frame is the server failing on the input, not refusing it (issue #12, item 5)."""

from __future__ import annotations

from tests.verify_live.conftest import live_context
from verify.checks import REGISTRY
from verify.live.hostile import ws_refused


def test_only_a_close_other_than_1011_or_an_ignored_frame_is_harmless() -> None:
    assert [o for o in ("closed 1002", "closed 1003", "closed", "ignored", "closed 1011") if ws_refused(o)] == [
        "closed 1002",
        "closed 1003",
        "closed",
        "ignored",
    ]


def test_a_yjs_handler_that_closes_1011_on_garbage_fails_the_check(start_target) -> None:
    twin = start_target("yjs-garbage-crash")
    result = REGISTRY["hostile-inputs-harmless"].run(live_context(twin))
    assert result.verdict == "fail", result.render()
    assert result.evidence is not None
    rows = {row[0]: row for row in result.evidence.rows}
    # every Yjs garbage frame got the crash close; the Socket.IO probes are untouched by the fault
    assert rows["Yjs text frame"][1] == "closed 1011" and rows["Yjs truncated sync update"][1] == "closed 1011"
    assert "Yjs text frame" in result.summary
