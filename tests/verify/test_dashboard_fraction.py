"""A dashboard panel that shows a fraction of the traffic fails on a fresh target (issue #12, item 5).

On a fresh target every series the run moves is born during the run, and the Request Rate
row used to keep only its upper bound then: a counter that counts every second response
passed. The lower bound now stays, lowered by what the born series counted before their first
scrape (read from that scrape), so half the traffic is "no".
"""

from __future__ import annotations

from pathlib import Path

from tests.verify._live import HTTP_REQUESTS
from tests.verify.test_dashboard_grafana import PANEL_CHECK, by_panel, context, running
from verify.checks import REGISTRY


def test_a_request_rate_panel_at_half_the_traffic_is_no(tmp_path: Path) -> None:
    with running(tmp_path, faults=("http-counter-half",)) as half:
        result = REGISTRY[PANEL_CHECK].run(context(half))
    assert result.verdict == "fail", result.render()
    request = by_panel(result)["Request Rate"]
    assert request[5] == f"http: {HTTP_REQUESTS}" and request[6] == "no", result.render()
    assert "series born in the run" in request[8]


def test_the_healthy_request_rate_panel_agrees_with_born_series_counted(tmp_path: Path) -> None:
    with running(tmp_path) as healthy:
        result = REGISTRY[PANEL_CHECK].run(context(healthy))
    request = by_panel(result)["Request Rate"]
    assert request[6] == "yes", result.render()
    low, high = (float(x) for x in request[7].split(".."))
    assert 0 <= low < HTTP_REQUESTS < high, request
