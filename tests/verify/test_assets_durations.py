"""A bad duration in a rules or Prometheus config file is one line naming where it stands."""

from __future__ import annotations

from pathlib import Path

import pytest

from codesync_load.errors import HarnessError
from verify.assets import evaluation_interval, load_rules, scrape_intervals


def test_bad_for_duration_names_the_file_and_rule(tmp_path: Path) -> None:
    rules = tmp_path / "alerts.yml"
    rules.write_text("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    for: 1s1m\n")
    with pytest.raises(HarnessError) as err:
        load_rules([rules])
    assert str(err.value) == f"{rules}: rule A `for`: '1s1m' is not a Prometheus duration (e.g. 30s, 5m, 1h30m)"


def test_bad_scrape_and_evaluation_intervals_name_the_field() -> None:
    with pytest.raises(HarnessError, match=r"^job api scrape_interval: 'soon' is not a Prometheus duration"):
        scrape_intervals({"scrape_configs": [{"job_name": "api", "scrape_interval": "soon"}]})
    with pytest.raises(HarnessError, match=r"^global evaluation_interval: '5 minutes' is not"):
        evaluation_interval({"global": {"evaluation_interval": "5 minutes"}})
    assert scrape_intervals({"global": {"scrape_interval": "15s"}, "scrape_configs": [{"job_name": "a"}]}) == {
        "a": 15.0
    }
