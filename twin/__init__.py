"""The CodeSync twin: a Python server that speaks CodeSync's protocols and exports its
metrics honestly, with switchable faults.

    $ codesync-load twin --api-port 4000 --yjs-port 4001 --fault ws-gauge-leak

It is the embedded default target, the CI target, and the proof that the verifier catches
broken telemetry. One process serves both CodeSync processes: the API (HTTP + Socket.IO)
on one port and the Yjs WebSocket server on another, each with its own `/metrics`.
"""
