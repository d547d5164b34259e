"""The twin's Socket.IO server: chat and presence on the API port, as CodeSync serves them.

    >>> from twin.realtime import attach_socketio
    >>> attach_socketio(api_app, ctx)      # called once by twin.server.TwinServer.start

`handshake` finds the client's JWT, `payloads` checks what clients emit, `server` holds the
python-socketio server, its handlers and its telemetry.
"""

from twin.realtime.server import RealtimeServer, attach_socketio

__all__ = ["RealtimeServer", "attach_socketio"]
