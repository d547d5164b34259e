"""Clients that speak CodeSync's three protocols and know nothing about Locust's scheduling.

    >>> from scenarios.clients.rest import RestClient
    >>> from scenarios.clients.socketio import SocketIOClient
    >>> from scenarios.clients.yjs import YjsClient

Modules, one job each:

- `transport`: the HTTP transport interface and a plain urllib3 transport.
- `rest`: the REST client (cookies, CSRF, envelopes, rate-limit headers, route templates).
- `socketio`: the Socket.IO client (join, chat round trips, event counts, `error` events).
- `yprotocol`: y-websocket framing (lib0 varUint) and the awareness codec.
- `propagation`: the registry that turns edits seen on two clients into latency samples.
- `yjs`: the Yjs client on pycrdt over `websockets.sync`.
- `locust_transport`, `locust_events`: the only modules that import Locust (lazily).
"""
