"""server-errors-reach-tracker against a real Bugsink on loopback and twins reporting through the
real sentry-sdk (real PostgreSQL and Redis behind the twins).

One Bugsink serves the module (its start-up migrates SQLite: seconds). Each test drives its own
requests, records what it received in a ledger as `codesync-load run` does, and judges that
run's window; the windows are apart by more than the check's clock slack, so one test's events
never count in another's.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from codesync_load.ledger import Ledger
from codesync_load.stack.ports import free_port
from codesync_load.stack.tracker import TrackerSpec, start_tracker, tracker_ready, tracker_shell
from codesync_load.twin_process import TwinProcess, start_twin
from tests.conftest import new_redis_prefix, stopped_at_exit
from tests.verify_live._tracker_runs import CHECK, OTHER_AGENT, REQUESTS, ROUNDS, drive, judge_run
from verify.checks import REGISTRY, CheckResult
from verify.checks.errors_tracked import SLACK_S
from verify.context import VerifyContext, VerifyOptions
from verify.report import strict_verdicts
from verify.tracker import TrackerAccess, attach_tracker, ingest_dsn, send_control, settled_events

RELEASE = "codesync-test@1.2.3"


@pytest.fixture(scope="module")
def tracker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackerSpec]:
    spec = TrackerSpec.new(tmp_path_factory.mktemp("bugsink"), free_port())
    proc = start_tracker(spec, spec.data_dir / "tracker.log")
    try:
        proc.wait_until(lambda: tracker_ready(spec.url), timeout=120, what="ready")
        yield spec
    finally:
        proc.stop()


@pytest.fixture
def twin(tmp_path: Path, pg_url: str, redis_url: str, run_id: str) -> Iterator[Callable[..., TwinProcess]]:
    """A twin with `faults` reporting to `dsn` (release RELEASE), stopped at the end."""
    with stopped_at_exit() as started:

        def make(dsn: str, *faults: str) -> TwinProcess:
            env = {
                "DATABASE_URL": pg_url,
                "REDIS_URL": redis_url,
                "CODESYNC_REDIS_PREFIX": new_redis_prefix(run_id),
                "SENTRY_DSN": dsn,
                "SENTRY_RELEASE": RELEASE,
            }
            proc = start_twin(tmp_path / f"twin{len(started)}", faults=faults, env=env, name=f"twin{len(started)}")
            started.append(proc)
            return proc

        yield make


def judge(run_dir: Path, spec: TrackerSpec | None, release: str | None = RELEASE) -> CheckResult:
    return judge_run(run_dir, {**spec.record(), "release": release} if spec else None)


def test_the_tracker_stores_real_sdk_events_and_refuses_a_wrong_key(tracker: TrackerSpec) -> None:
    import sentry_sdk

    access = TrackerAccess.from_record(tracker.record())
    assert access is not None
    since = time.time() - 0.5
    for dsn, text in ((tracker.dsn, "right key"), (tracker.dsn.replace(tracker.key, "0" * 32), "wrong key")):
        client = sentry_sdk.Client(dsn=dsn, default_integrations=False)
        with sentry_sdk.new_scope() as scope:
            scope.set_client(client)
            sentry_sdk.capture_message(f"tracker test: {text}")
        client.flush(timeout=5)
        client.close()
    events = settled_events(access, since, time.time(), expected=2, timeout=3)
    assert len(events) == 1, events
    # The wrong key is refused at the envelope endpoint itself.
    wrong = tracker.dsn.replace(tracker.key, "0" * 32)
    req = urllib.request.Request(
        f"{tracker.url}/api/{tracker.project_id}/envelope/",
        data=b'{"event_id":"' + b"1" * 32 + b'"}\n{"type":"event"}\n{"message":"x"}\n',
        headers={"X-Sentry-Auth": f"Sentry sentry_key={wrong.split('//')[1].split('@')[0]}, sentry_version=7"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=5)
    assert refused.value.code in (401, 403), refused.value.code


@pytest.mark.parametrize("others", [0, 3], ids=["alone", "with-another-client"])
def test_injected_5xx_reconcile_one_to_one_with_route_and_release(tracker, twin, tmp_path: Path, others: int) -> None:
    """Every 5xx of the run is one event with its route and release. On a shared CodeSync
    (`others` rounds from another browser in the same window) their events, with another
    User-Agent, are set aside: no false 'no 5xx seen', and the summary says how many."""
    ledger = drive(twin(tracker.dsn, "error-burst=1.0"), tmp_path / "run", others=others)
    assert ledger.total("http", status=500) == ROUNDS * len(REQUESTS)
    result = judge(tmp_path / "run", tracker)
    assert result.verdict == "pass", result.render()
    set_aside = others * len(REQUESTS)
    aside = f"; {set_aside} event(s) of other clients set aside (User-Agent {OTHER_AGENT!r} x{set_aside})"
    assert result.summary == (
        f"{ROUNDS * len(REQUESTS)} 5xx on 2 route(s), {ROUNDS * len(REQUESTS)} events one to one; no event for the "
        f"0 4xx; release {RELEASE}; no authorization/cookie header" + (aside if others else "")
    )
    assert (f"({set_aside} of other clients, not counted)" in (result.measured or "")) == bool(others)


def test_a_burst_of_concurrent_5xx_reconciles_once_delivery_drained(tracker, twin, tmp_path: Path) -> None:
    # 160 errors at once: Bugsink digests each in its request, so delivery lags the answers by
    # seconds; the check waits while events keep arriving.
    drive(twin(tracker.dsn, "error-burst=1.0"), tmp_path / "run", rounds=80, parallel=16)
    result = judge(tmp_path / "run", tracker)
    assert result.verdict == "pass", result.render()
    assert result.summary.startswith("160 5xx on 2 route(s), 160 events one to one;")


def test_a_4xx_only_run_produces_no_event(tracker, twin, tmp_path: Path) -> None:
    ledger = drive(twin(tracker.dsn), tmp_path / "run")
    statuses = {status for (_m, _r, status), _n in ledger.entries("http")}
    assert statuses and all(400 <= int(s) < 500 for s in statuses), statuses
    result = judge(tmp_path / "run", tracker)
    assert result.verdict == "pass", result.render()
    assert result.summary == (
        f"no 5xx in the run and no event for its {ROUNDS * 2} 4xx (whether a 5xx would reach the tracker is not "
        "exercised by this run)"
    )


def test_unreported_5xx_fail_with_the_counts_per_route(tracker, twin, tmp_path: Path) -> None:
    drive(twin(tracker.dsn, "error-burst=1.0", "errors-unreported=2"), tmp_path / "run")
    result = judge(tmp_path / "run", tracker)
    assert result.verdict == "fail", result.render()
    assert result.evidence is not None
    # Every second capture dropped, requests alternating between the two routes: one route
    # keeps all its events, the other loses all of them.
    rows = {row[1]: row[2:] for row in result.evidence.rows}
    assert rows == {"/api/auth/me": (ROUNDS, 0, 0, f"-{ROUNDS} (5xx never reported)")}, result.render()
    assert result.summary.startswith(f"1 mismatch(es) between the run's {ROUNDS * 2} 5xx and the tracker's events")
    # The control: the tracker keeps an event that reaches it, so the target is the one that did
    # not deliver (and the control event itself is never counted: the rows above have no extra).
    control = re.search(r"; control: an event the harness sent to (\S+) was stored after ([0-9.]+) s, ", result.summary)
    assert control is not None, result.summary
    assert control.group(1) == tracker.dsn, result.summary
    assert result.summary.endswith(
        "so this tracker keeps what reaches it: the run's target did not deliver the missing events to it "
        "(is its SENTRY_DSN this project's, and does its error handler report?)"
    ), result.summary


def test_a_tracker_over_its_quota_is_named_by_the_control_not_the_target(
    tracker, twin, tmp_path: Path, monkeypatch
) -> None:
    """A Bugsink whose project quota is exceeded answers 429 to every event: the 5xx are missing
    from it through no fault of the target, and the control event is refused too; the check
    says the tracker loses events instead of blaming the target."""
    import verify.tracker

    monkeypatch.setattr(verify.tracker, "CONTROL_TIMEOUT_S", 5.0)  # nothing will arrive: no need to wait 30 s
    stop_ingesting = (
        "import datetime, json; from projects.models import Project; p = Project.objects.get(id={id}); "
        "p.quota_exceeded_until = {until}; p.quota_exceeded_reason = json.dumps(['5_MINUTES', 1, 1]); p.save()"
    )
    far = "datetime.datetime(2100, 1, 1, tzinfo=datetime.timezone.utc)"
    tracker_shell(tracker.data_dir, stop_ingesting.format(id=tracker.project_id, until=far))
    try:
        drive(twin(tracker.dsn, "error-burst=1.0"), tmp_path / "run")
        result = judge(tmp_path / "run", tracker)
    finally:
        tracker_shell(tracker.data_dir, stop_ingesting.format(id=tracker.project_id, until="None"))
    assert result.verdict == "fail", result.render()
    assert result.evidence is not None
    rows = {row[1]: row[2:] for row in result.evidence.rows}
    assert rows == {
        "/api/sessions": (ROUNDS, 0, 0, f"-{ROUNDS} (5xx never reported)"),
        "/api/auth/me": (ROUNDS, 0, 0, f"-{ROUNDS} (5xx never reported)"),
    }, result.render()
    assert result.summary.endswith(
        f"; control: an event the harness sent to {tracker.dsn} was not stored within 5 s either: this tracker "
        "(its ingestion, quota or project) loses events, so the missing ones may be its loss, not the target's"
    ), result.summary


def test_a_wrong_release_fails(tracker, twin, tmp_path: Path) -> None:
    drive(twin(tracker.dsn, "error-burst=1.0"), tmp_path / "run")
    result = judge(tmp_path / "run", tracker, release="codesync@other")
    assert result.verdict == "fail", result.render()
    assert result.evidence is not None
    assert result.evidence.rows[-1][-1] == f"{ROUNDS * 2} event(s) without release codesync@other"


def test_without_a_tracker_the_check_is_not_applicable_never_passed(tmp_path: Path) -> None:
    """A stack with no tracker (a Prometheus of your own) lacks a part:
    not applicable, like Grafana there, listed as not judged, never counted as passed."""
    run_dir = tmp_path / "run"
    ledger = Ledger(meta={})
    ledger.phase_start("steady")
    ledger.count("http", "GET", "/api/sessions", 500)
    ledger.phase_end()
    run_dir.mkdir()
    ledger.write(run_dir / "ledger.json", complete=True)
    result = judge(run_dir, None)
    assert (result.verdict, result.applies) == ("skip", False), result.render()
    assert result.summary.startswith("no error tracker known for this run")
    (strict,) = strict_verdicts([result], strict=True)
    assert (strict.verdict, strict.applies, strict.ok) == ("skip", False, False)


def test_events_read_back_carry_no_sensitive_header(tracker, twin, tmp_path: Path) -> None:
    drive(twin(tracker.dsn, "error-burst=1.0"), tmp_path / "run")
    access = TrackerAccess.from_record(tracker.record())
    assert access is not None
    doc = json.loads((tmp_path / "run" / "ledger.json").read_text())
    start = doc["phases"][0]["start"]
    events = settled_events(access, start - SLACK_S, doc["written_at"] + SLACK_S, expected=ROUNDS * 2)
    assert len(events) == ROUNDS * 2
    assert all(e.headers and not e.sensitive_headers for e in events), [e.headers for e in events]
    assert {e.transaction for e in events} == {"POST /api/sessions", "GET /api/auth/me"}


def test_the_recorded_stacks_tracker_reaches_the_gate_and_verify_of_an_outside_codesync(tmp_path: Path) -> None:
    """`stack up --api-url` records its Bugsink; `gate`/`verify --api-url` on that CodeSync read it."""
    from codesync_load.stack.state import write_state
    from codesync_load.target import resolve_target

    tracker = {"url": "http://127.0.0.1:1", "dsn": "http://k@127.0.0.1:1/1", "token": "t" * 40, "project_id": 1}
    api, yjs = "http://10.0.0.5:4000", "ws://10.0.0.5:4001"
    write_state(
        tmp_path,
        {"backend": "local", "state_dir": str(tmp_path), "api_url": api, "yjs_url": yjs, "tracker": tracker},
    )
    for target in (resolve_target(state_dir=tmp_path), resolve_target(api_url=api, yjs_url=yjs, state_dir=tmp_path)):
        assert target is not None and target.tracker == tracker
        assert target.stack().tracker_record == tracker  # what gate attaches
        access = TrackerAccess.from_record(target.tracker)
        assert access is not None and (access.url, access.project_id, access.release) == (tracker["url"], 1, None)
    # Another CodeSync than the recorded one gets no tracker: its check is not judged, not passed.
    other = resolve_target(api_url="http://10.0.0.6:4000", yjs_url=yjs, state_dir=tmp_path)
    assert other is not None and other.tracker is None


def test_a_tracker_that_does_not_answer_is_an_error_of_this_check_only(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    ledger = Ledger(meta={"api_url": "http://127.0.0.1:4000"})
    ledger.phase_start("steady")
    ledger.count("http", "GET", "/api/sessions", 500)
    ledger.phase_end()
    run_dir.mkdir()
    ledger.write(run_dir / "ledger.json", complete=True)
    port = free_port()  # nothing listens there
    ctx = VerifyContext(VerifyOptions(run_dir=run_dir))
    attach_tracker(ctx, TrackerAccess(f"http://127.0.0.1:{port}", "0" * 40, 1))
    result = REGISTRY[CHECK].run(ctx)  # no HarnessError: the other checks of the run still judge
    assert result.verdict == "error", result.render()
    assert result.summary.startswith(f"cannot judge: the error tracker at http://127.0.0.1:{port} does not answer")


def test_an_event_carrying_credentials_fails_naming_the_headers(tracker: TrackerSpec, tmp_path: Path) -> None:
    """One 5xx, reported once with the right route and release, but carrying the request's
    Authorization and Cookie headers (an SDK with sendDefaultPii on): the count agrees, the
    check still fails, naming the event and the headers it carries."""
    import sentry_sdk

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    time.sleep(SLACK_S + 0.2)  # apart from the previous test's window
    ledger = Ledger(meta={"api_url": "http://127.0.0.1:4000"})
    ledger.phase_start("steady")
    ledger.count("http", "GET", "/api/sessions", 500)
    client = sentry_sdk.Client(dsn=tracker.dsn, default_integrations=False, send_default_pii=True, release=RELEASE)
    with sentry_sdk.new_scope() as scope:
        scope.set_client(client)
        sentry_sdk.capture_event(
            {
                "level": "error",
                "message": "database unreachable",
                "transaction": "GET /api/sessions",
                "request": {
                    "method": "GET",
                    "url": "http://127.0.0.1:4000/api/sessions",
                    "headers": {"Authorization": "Bearer secret", "Cookie": "sid=1", "Accept": "*/*"},
                },
            }
        )
    client.flush(timeout=5)
    client.close()
    ledger.phase_end()
    ledger.write(run_dir / "ledger.json", complete=True)
    result = judge(run_dir, tracker)
    assert result.verdict == "fail", result.render()
    assert result.evidence is not None
    assert [(row[0], row[1], row[-1]) for row in result.evidence.rows] == [
        ("GET", "/api/sessions", "carries Authorization, Cookie")
    ], result.render()


def test_verify_reads_a_bugsink_of_yours_named_by_options(tracker, twin, tmp_path: Path) -> None:
    """An operator whose CodeSync already reports to their own Bugsink names it: `verify
    --tracker-url URL` with the token from $BUGSINK_TOKEN reconciles the run against it; a token
    that Bugsink refuses is this check's error (exit 2, one line naming the token), never a pass."""
    from tests.stack._support import run_cli

    drive(twin(tracker.dsn, "error-burst=1.0"), tmp_path / "run")
    argv = ["verify", str(tmp_path / "run"), "--check", CHECK, "--tracker-url", tracker.url]
    argv += ["--tracker-release", RELEASE, "--state-dir", str(tmp_path / "no-stack")]
    good = run_cli(*argv, env={"BUGSINK_TOKEN": tracker.token})
    row = next((line for line in good.stdout.splitlines() if line.startswith(CHECK + " ")), good.stdout + good.stderr)
    assert good.returncode == 0, good.stdout[-3000:] + good.stderr[-2000:]
    assert row.split()[1] == "PASS", row
    assert f"{ROUNDS * len(REQUESTS)} 5xx on 2 route(s)" in row, row
    bad = run_cli(*argv, env={"BUGSINK_TOKEN": "0" * 40})
    assert bad.returncode == 2, bad.stdout[-3000:] + bad.stderr[-2000:]
    assert f"the error tracker at {tracker.url} refused the API token" in bad.stdout + bad.stderr
    assert "Traceback" not in bad.stdout + bad.stderr


def test_tracker_options_that_cannot_work_are_one_line_each(tmp_path: Path) -> None:
    from codesync_load.errors import HarnessError
    from verify.tracker import access_from_options

    recorded = {"url": "http://127.0.0.1:9", "token": "r" * 40, "project_id": 2, "release": None}
    assert access_from_options(None, None, None, None, recorded) == TrackerAccess("http://127.0.0.1:9", "r" * 40, 2)
    assert access_from_options(None, None, None, None, None) is None
    given = access_from_options("http://127.0.0.1:8000/", "t" * 40, 3, "v1", recorded)
    assert given == TrackerAccess("http://127.0.0.1:8000", "t" * 40, 3, "v1")  # yours wins over the recorded one
    for args, words in (
        (("http://127.0.0.1:8000", None, None, None), "needs an API token: pass --tracker-token or set BUGSINK_TOKEN"),
        ((None, "t", None, None), "pass --tracker-url URL too"),
        (("127.0.0.1:8000", "t", None, None), "--tracker-url '127.0.0.1:8000' is not an http(s) URL"),
        (("http://127.0.0.1:8000", "t", 0, None), "--tracker-project 0: Bugsink numbers projects from 1"),
    ):
        with pytest.raises(HarnessError, match=re.escape(words)):
            access_from_options(*args, recorded)
    # The gate around a stack it starts itself refuses a tracker of yours: its twin reports elsewhere.
    from tests.stack._support import run_cli

    refused = run_cli("gate", "--twin", "--tracker-url", "http://127.0.0.1:8000", "--out", str(tmp_path / "g"))
    assert refused.returncode == 2 and "--tracker-url names the Bugsink your CodeSync reports to" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr


def test_the_control_event_goes_where_the_harness_reaches_the_tracker_and_is_never_counted(
    tracker: TrackerSpec, tmp_path: Path
) -> None:
    """The DSN comes from Bugsink's API (its BASE_URL host) with the host the harness reads at;
    a window holding only control events judges as a run without any event."""
    access = TrackerAccess(tracker.url.replace("127.0.0.1", "localhost"), tracker.token, tracker.project_id)
    assert ingest_dsn(access) == tracker.dsn.replace("127.0.0.1", "localhost")
    time.sleep(SLACK_S + 0.2)  # apart from the previous test's window
    ledger = Ledger(meta={"profile": "tracker-test"})
    ledger.phase_start("steady")
    ledger.count("http", "GET", "/api/auth/me", 401)  # a run of one 4xx, whose window holds the control
    outcome = send_control(access)
    ledger.phase_end()
    (tmp_path / "run").mkdir()
    ledger.write(tmp_path / "run" / "ledger.json", complete=True)
    assert outcome.error is None and outcome.stored_after is not None, outcome
    result = judge(tmp_path / "run", tracker)
    assert result.verdict == "pass", result.render()
    assert result.summary.startswith("no 5xx in the run and no event for its 1 4xx"), result.summary
    assert result.measured is not None and result.measured.startswith("0 events of the run's target"), result.measured


def test_a_control_against_a_tracker_that_went_away_names_no_side() -> None:
    gone = TrackerAccess(f"http://127.0.0.1:{free_port()}", "0" * 40, 1)
    outcome = send_control(gone)
    assert outcome.stored_after is None and outcome.error is not None
    assert outcome.sentence("http://127.0.0.1:4000") == (
        f"control not run ({outcome.error}): which side lost the events is not known"
    )
    assert outcome.error.startswith(f"the error tracker at {gone.url} does not answer"), outcome.error
