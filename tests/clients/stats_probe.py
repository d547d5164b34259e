"""Batched propagation statistics against Locust's own per-sample logging, in a Locust process.

    $ python tests/clients/stats_probe.py   ->  one JSON line on stdout

Started as a subprocess by test_locust_adapter.py (importing Locust patches the process with
gevent). The same latency samples go through `yjs_observer` into one real Environment and
through `RequestStats.log_request`, one call each, into another, over about two and a half
seconds; the two propagation entries and totals are printed side by side. Then three samples
are left to the hub timer alone, and a worker-style report is taken.
"""

from __future__ import annotations

import json
import random
import time

import gevent
import locust  # noqa: F401  (patches the process, as in a Locust worker)
from locust.env import Environment

from scenarios.clients.locust_events import yjs_observer
from scenarios.clients.yjs import YjsEvent

READ_SIZE = 7  # latency samples per simulated socket read
FIELDS = ("num_requests", "num_failures", "total_response_time", "min_response_time", "max_response_time")


def entry_view(entry) -> dict:
    view = {name: getattr(entry, name) for name in FIELDS}
    view["response_times"] = sorted(entry.response_times.items())
    view["num_reqs_per_sec"] = sorted(entry.num_reqs_per_sec.items())
    view["median"] = entry.median_response_time
    view["p95"] = entry.get_response_time_percentile(0.95)
    return view


def main() -> None:
    batched, logged, by_read = Environment(), Environment(), Environment()
    observe = yjs_observer(batched)
    # what LeanYjsConnection calls: one list per socket read, no per-frame call (see its _Sinks)
    read_batches = yjs_observer(by_read).__self__
    assert read_batches.yjs_frame_hook("received", "update") is None
    assert yjs_observer(batched) == observe  # one batcher per environment, shared by connections
    rng = random.Random(4)
    started = time.time()
    count = 0
    while time.time() - started < 2.5:
        read: list[float] = []
        for _ in range(500):
            seconds = rng.choice((rng.uniform(0.0001, 0.09), rng.uniform(0.09, 2.5), rng.uniform(2.5, 30.0)))
            observe(YjsEvent("latency", "propagation", seconds))
            logged.stats.log_request("YJS", "propagation", seconds * 1000.0, 0)
            read.append(seconds)
            if len(read) == READ_SIZE:
                read_batches.yjs_latencies(read)
                read = []
            count += 1
        read_batches.yjs_latencies(read)
        observe(YjsEvent("received", "update"))  # frames are not Locust's business here
        gevent.sleep(0.05)
    batched.events.test_stop.fire(environment=batched)
    by_read.events.test_stop.fire(environment=by_read)
    same = {
        "entry": [
            entry_view(batched.stats.get("propagation", "YJS")),
            entry_view(logged.stats.get("propagation", "YJS")),
        ],
        "total": [entry_view(batched.stats.total), entry_view(logged.stats.total)],
        "by_read": [entry_view(by_read.stats.get("propagation", "YJS")), entry_view(by_read.stats.total)],
        "count": count,
        "read_size": READ_SIZE,
    }
    # left alone, three samples reach the statistics through the hub timer within ~1 s
    lone = Environment()
    lone_observe = yjs_observer(lone)
    for seconds in (0.001, 0.002, 0.003):
        lone_observe(YjsEvent("latency", "propagation", seconds))
    before_timer = lone.stats.get("propagation", "YJS").num_requests
    gevent.sleep(1.5)
    after_timer = lone.stats.get("propagation", "YJS").num_requests
    # a worker's report flushes what is kept (it lands in the next report: Locust serialised first)
    lone_observe(YjsEvent("latency", "propagation", 0.004))
    lone.events.report_to_master.fire(client_id="probe", data={})
    after_report = lone.stats.get("propagation", "YJS").num_requests
    print(json.dumps({**same, "timer": [before_timer, after_timer], "after_report": after_report}))


if __name__ == "__main__":
    main()
