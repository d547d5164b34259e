"""Run the clients the way a Locust user does, in a process Locust has gevent-patched.

    $ python tests/clients/locust_probe.py API_URL YJS_URL   ->  one JSON line on stdout

Started as a subprocess by test_locust_adapter.py: importing Locust patches the process with
gevent, which must never happen inside pytest. Every request event fired through
`locust_events` is collected from a real `locust.env.Environment` and printed, with the
propagation entry of its statistics (latency samples reach them in batches, not as events).
"""

from __future__ import annotations

import json
import sys
import uuid
from collections import Counter

import locust  # noqa: F401  (patches the process, as in a Locust worker)
from locust.env import Environment
from locust.stats import bucket_response_time

from scenarios.clients.locust_events import rest_observer, timed, yjs_observer
from scenarios.clients.locust_transport import LocustHttpTransport
from scenarios.clients.propagation import EditRegistry
from scenarios.clients.rest import RestClient
from scenarios.clients.socketio import SocketIOClient
from scenarios.clients.yjs import YjsClient


def main(api_url: str, yjs_url: str) -> None:
    env = Environment()
    fired: list[dict] = []
    env.events.request.add_listener(
        lambda **kw: fired.append(
            {
                "request_type": kw["request_type"],
                "name": kw["name"],
                "response_time": kw["response_time"],
                "response_length": kw["response_length"],
                "exception": None if kw["exception"] is None else str(kw["exception"]),
            }
        )
    )
    transport = LocustHttpTransport()
    api = RestClient(api_url, transport, observers=(rest_observer(env),))
    api.register(f"l{uuid.uuid4().hex[:10]}@example.test", "Secret123", "Locust User").raise_for_error()
    session_id = api.create_session("locust probe").raise_for_error().data["session"]["id"]
    api.put_file_content(session_id, "src/main.py", "x = 1\n").raise_for_error()
    api.get_session("missing-session")  # a 404: reported as a failure with its code

    sio = SocketIOClient(api_url, api.token, user_id=api.user["id"], timeout=10)
    with timed(env, "SIO", "connect"):
        sio.connect()
    sio.join(session_id)
    with timed(env, "SIO", "chat round trip"):
        sio.chat(session_id, "hello from gevent")
    sio.disconnect()

    registry = EditRegistry()
    doc = f"{session_id}:src/main.py"
    with (
        YjsClient(yjs_url, doc, registry=registry) as a,
        YjsClient(yjs_url, doc, registry=registry, observers=(yjs_observer(env),)) as b,
    ):
        for i in range(5):
            a.insert(0, str(i))
        b.wait_for(lambda c: len(c.latencies) == 5, what="5 samples")
        text = b.text()
        latencies_ms = [value * 1000.0 for value in b.latencies]
    transport.close()
    env.events.test_stop.fire(environment=env)  # as Locust does at the end: batched samples land
    entry = env.stats.get("propagation", "YJS")
    propagation = {
        "num_requests": entry.num_requests,
        "num_failures": entry.num_failures,
        "total_response_time": entry.total_response_time,
        "min_response_time": entry.min_response_time,
        "max_response_time": entry.max_response_time,
        "response_times": sorted(entry.response_times.items()),
        "expected_response_times": sorted(Counter(map(bucket_response_time, latencies_ms)).items()),
        "latencies_ms": latencies_ms,
    }
    print(json.dumps({"events": fired, "text": text, "cookies": sorted(api.cookies), "propagation": propagation}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
