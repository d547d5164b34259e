"""scenarios.recording against a real twin with the real clients (no Locust): the vocabulary."""

from __future__ import annotations

import uuid

from codesync_load.ledger import Ledger
from scenarios.clients.rest import RestClient
from scenarios.clients.socketio import SocketIOClient
from scenarios.clients.yjs import YjsClient
from scenarios.recording import Recorder, limiter_for_route


def test_rest_results_become_http_error_and_rate_limit_counts(twin) -> None:
    ledger = Ledger()
    recorder = Recorder(ledger)
    api = RestClient(twin.api_url, observers=(recorder.http,))
    email = f"rec-{uuid.uuid4().hex[:8]}@example.test"
    api.register(email, "Recorder123", "Rec Order").raise_for_error()
    session = api.create_session("recording test").raise_for_error().data["session"]["id"]
    for _ in range(61):  # the files routes refuse the 61st hit within the window
        api.list_files(session)
    api.close()
    assert ledger.get("http", "GET", "/health", 200) == 1  # the CSRF pair fetched first
    assert ledger.get("http", "POST", "/api/auth/register", 201) == 1
    assert ledger.get("http", "GET", "/api/sessions/:id/files", 200) == 60
    assert ledger.get("http", "GET", "/api/sessions/:id/files", 429) == 1
    assert ledger.get("rate_limited", "files") == 1 and ledger.total("rate_limited") == 1
    assert ledger.get("error", "http", "RATE_LIMIT") == 1
    assert len(ledger.samples("http_s")) == ledger.total("http") == 64
    assert limiter_for_route("/api/sessions/:id/search") == "search"


def test_socketio_and_yjs_observations_become_messages_updates_and_samples(twin) -> None:
    ledger = Ledger()
    recorder = Recorder(ledger)
    api = RestClient(twin.api_url)
    api.register(f"rec-{uuid.uuid4().hex[:8]}@example.test", "Recorder123", "Rec Order").raise_for_error()
    user_id = api.user["id"]
    session = api.create_session("recording test").raise_for_error().data["session"]["id"]
    sio = SocketIOClient(twin.api_url, api.token, user_id=user_id, observers=(recorder.socketio_event,))
    sio.connect()
    try:
        sio.join(session)
        sio.chat(session, "hello ledger")
        sio.leave(session)
    finally:
        sio.disconnect()
        api.close()
    assert ledger.get("message", "socketio", "session:join", "sent") == 1
    assert ledger.get("message", "socketio", "chat:message:send", "sent") == 1
    assert ledger.get("message", "socketio", "chat:message:new", "received") == 1
    assert ledger.get("message", "socketio", "session:leave", "sent") == 1

    doc = f"{session}:main.py"
    writer = YjsClient(twin.yjs_url, doc, observers=(recorder.yjs_event,))
    reader = YjsClient(twin.yjs_url, doc, observers=(recorder.yjs_event,))
    writer.connect()
    reader.connect()
    try:
        for i in range(3):
            writer.insert(0, str(i))
        reader.wait_for(lambda c: c.text() == writer.text(), 10, "the reader to converge")
        writer.wait_for(lambda c: c.echoes_received == 3, 10, "the writer's echoes")
    finally:
        writer.close()
        reader.close()
    assert ledger.get("yjs_update", "sent") == 3
    assert ledger.get("yjs_update", "echo") == 3  # the server rebroadcasts to the sender too
    assert ledger.get("yjs_update", "received") == ledger.get("yjs_update", "applied") == 3
    assert ledger.get("message", "yjs", "update", "sent") == 3
    assert ledger.get("message", "yjs", "sync_step1", "sent") == 2
    assert len(ledger.samples("yjs_propagation_s")) == 3
    assert all(0 <= s < 5 for s in ledger.samples("yjs_propagation_s"))


def test_unintended_answers_are_listed_by_route_and_status(twin, tmp_path) -> None:
    """A writer who is no participant: each 403 is an unintended answer, and the run's console
    summary names the route, the status and the envelope code with the exact count."""
    from codesync_load.commands.run import summary_lines

    ledger = Ledger()
    recorder = Recorder(ledger)
    owner = RestClient(twin.api_url)
    owner.register(f"own-{uuid.uuid4().hex[:8]}@example.test", "Recorder123", "Own Er").raise_for_error()
    session = owner.create_session("unintended").raise_for_error().data["session"]["id"]
    stranger = RestClient(twin.api_url, observers=(recorder.http,))
    stranger.observe(lambda result: None if result.ok else recorder.unexpected_http(result))
    stranger.register(f"str-{uuid.uuid4().hex[:8]}@example.test", "Recorder123", "Str Anger").raise_for_error()
    for n in range(3):
        assert stranger.put_file_content(session, "src/main.py", f"v{n}").status == 403
    assert stranger.list_files("cnosuchsession0000").status == 404
    owner.close()
    stranger.close()
    assert ledger.get("unexpected", "PUT", "/api/sessions/:id/files/:path/content", 403, "FORBIDDEN") == 3
    ledger.write(tmp_path / "ledger.json", complete=True)
    lines = summary_lines(tmp_path)
    at = lines.index("  unintended HTTP answers 4, by route and status:")
    assert lines[at + 1 :] == [
        "    403 FORBIDDEN x 3 on PUT /api/sessions/:id/files/:path/content",
        "    404 NOT_FOUND x 1 on GET /api/sessions/:id/files",
    ]
