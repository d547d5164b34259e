"""How the healthy-baseline alert check judges the load it ran (verify.live.driver.judge_load),
from ledgers written here: a silent rule set proves nothing when the load that should have
exercised it was itself refused, failing or cut short. The live run is in test_live_alerts.py.
"""

from __future__ import annotations

from pathlib import Path

from codesync_load.ledger import Ledger
from verify.live.driver import healthy_profile, judge_load


def write(run_dir: Path, ledger: Ledger, complete: bool = True, reason: str = "") -> Path:
    run_dir.mkdir()
    ledger.write(run_dir / "ledger.json", complete=complete, incomplete_reason=reason)
    return run_dir


def healthy_ledger() -> Ledger:
    ledger = Ledger()
    ledger.count("http", "GET", "/api/sessions", 200, n=40)
    ledger.count("connection", "yjs", "opened", n=3)
    ledger.count("yjs_update", "sent", n=120)
    ledger.result("edit_propagation", True, "doc-1")
    return ledger


def test_a_healthy_load_is_described_and_has_no_problem(tmp_path: Path) -> None:
    run_dir = write(tmp_path / "baseline-load-x", healthy_ledger())
    traffic, problems = judge_load(run_dir, 0)
    assert traffic == (
        "baseline-load-x: http requests 40, websocket connections opened 3, yjs updates sent 120; "
        "429s 0, errors 0, client failures 0, failed checks 0"
    )
    assert problems == []


def test_each_unhealthy_trait_of_the_load_is_named(tmp_path: Path) -> None:
    ledger = healthy_ledger()
    ledger.count("http", "PUT", "/api/sessions/:id/files/content", 429, n=2)
    ledger.count("rate_limited", "files", n=2)
    ledger.count("error", "http", "INTERNAL_ERROR", n=5)
    ledger.count("failure", "http", "GET /api/sessions", "TRANSPORT")
    ledger.result("edit_propagation", False, "doc-2", "never arrived")
    run_dir = write(tmp_path / "run", ledger, complete=False, reason="locust was stopped")
    _traffic, problems = judge_load(run_dir, 1)
    assert problems == [
        "429s 2",
        "errors 5",
        "client failures 1",
        "failed checks 1",
        "ledger incomplete (locust was stopped)",
        f"Locust exited 1 (see {run_dir / 'locust.out'})",
    ]


def test_a_load_that_sent_nothing_or_left_no_ledger_is_not_healthy(tmp_path: Path) -> None:
    assert judge_load(write(tmp_path / "empty", Ledger()), 0)[1] == ["no HTTP request was sent"]
    traffic, problems = judge_load(tmp_path, None)
    assert traffic == "no ledger"
    assert len(problems) == 1 and problems[0].startswith("the load left no readable ledger (")


def test_the_baseline_profile_is_compressed_in_time_only() -> None:
    profile = healthy_profile(12.0)
    assert profile.name == "baseline"
    assert profile.total_duration == 12.0
    assert [(s.users, s.spawn_rate) for s in profile.stages] == [(20, 1), (20, 1)]  # as in baseline.toml
    assert [s.duration for s in profile.stages] == [2.4, 9.6]  # 60 s + 240 s scaled by 12 / 300
