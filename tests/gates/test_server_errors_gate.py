"""gates/ci.toml `server-errors` sees an error counter series born during the run (issue #12, item 4).

`increase(codesync_errors_total[$__range])` is 0 for a series whose first scrape already holds
the run's only error (there is no earlier sample to increase from), so a run with one error
passed the gate. The file's own idiom, `X - X offset $__range or X`, counts it. A real twin
answers one unauthenticated GET /api/auth/me with 401 AUTH_REQUIRED (its error handler counts
it: a new `codesync_errors_total` series), a real Prometheus scrapes it, and the gate of the
shipped gate file is evaluated over that window.
"""

from __future__ import annotations

import time
from pathlib import Path

from codesync_load.gates import WindowQuery, evaluate_gates, load_gates
from scenarios.clients.rest import RestClient
from tests.verify._live import start_prometheus, wait_for_next_scrape

REPO = Path(__file__).resolve().parents[2]
ERRORS = 'codesync_errors_total{job="codesync-backend"}'


def test_one_error_in_a_series_born_during_the_run_fails_the_server_errors_gate(twin_factory, tmp_path: Path) -> None:
    twin = twin_factory()
    live = start_prometheus(tmp_path, {"codesync-backend": f"127.0.0.1:{twin.api_port}"})
    try:
        wait_for_next_scrape(live.prom, "codesync-backend")
        start = time.time()
        assert live.prom.instant(ERRORS) == []  # no error series before the run
        client = RestClient(twin.api_url)
        try:
            assert client.me().status == 401  # the run's only error
        finally:
            client.close()
        wait_for_next_scrape(live.prom, "codesync-backend")
        wait_for_next_scrape(live.prom, "codesync-backend")
        at = time.time()
        assert sum(s.value for s in live.prom.instant(ERRORS, at)) == 1.0  # born during the run, holding 1
        spec = load_gates(REPO / "gates" / "ci.toml")
        gate = next(g for g in spec.gates if g.name == "server-errors")
        (result,) = evaluate_gates([gate], [{}], [WindowQuery(live.prom, start, at)])
        assert result.verdict == "fail", result.render()
        assert result.measured == "1", result.render()
        # The old expression, on the same data, sees nothing: the defect this gate had.
        old = live.prom.instant(f"(sum(increase({ERRORS}[{max(1, int(at - start) + 1)}s])) or vector(0))", at)
        assert [s.value for s in old] == [0.0]
    finally:
        live.stop()
