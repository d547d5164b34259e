"""Proxy variables in the environment must not divert the load: every client talks direct.

websockets >= 15 and websocket-client (under python-socketio) both read http_proxy by
default; a load generator that silently went through a proxy would measure the proxy.
"""

from __future__ import annotations

import uuid

import pytest

from scenarios.clients.propagation import EditRegistry
from scenarios.clients.rest import RestClient
from scenarios.clients.socketio import SocketIOClient
from scenarios.clients.yjs import YjsClient

DEAD_PROXY = "http://127.0.0.1:9"  # discard port: nothing listens there


def test_clients_ignore_proxy_variables(twin, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, DEAD_PROXY)
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    api = RestClient(twin.api_url)
    api.register(f"p{uuid.uuid4().hex[:10]}@example.test", "Secret123", "Proxy User").raise_for_error()
    sio = SocketIOClient(twin.api_url, api.token, timeout=5)
    sio.connect()
    sio.disconnect()
    with YjsClient(twin.yjs_url, f"p{uuid.uuid4().hex[:8]}:a.py", registry=EditRegistry()) as editor:
        assert editor.synced
