"""The twin's Yjs process: CodeSync's y-websocket server with persistence and its metrics.

    >>> from twin.yjs.server import build_yjs_app
    >>> app = build_yjs_app(ctx)      # aiohttp app for the Yjs port

Modules, one job each: `protocol` (wire format), `awareness` (presence table), `connection`
(per-client send queue), `rooms` (loaded documents and write-behind persistence), `http`
(/metrics and plain-HTTP answers), `server` (the WebSocket session).
"""
