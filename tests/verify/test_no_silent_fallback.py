"""What a check judges is never changed by a silent default (issue #12, item 6).

Before: `contract_label_map` swallowed every exception (an unreadable contract judged labels
against nothing), the scrape and evaluation intervals fell back to 15 s, whether a rule's
series is a counter was guessed from its suffix (rules-promtool-generated now feeds promtool
only what the ledger predicts, whose kinds the expectations state), and "5xx" had three definitions. Now each
unknown is a named error of the check (verdict `error`, one message naming the fix), and a
server error is 500-599 wherever it is counted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from codesync_load.errors import HarnessError
from tests.verify._live import start_prometheus
from verify.checks.base import CheckError, check
from verify.checks.promtool import _evaluation_interval
from verify.checks.static import contract_label_map
from verify.context import VerifyContext, VerifyOptions
from verify.expectations import Selection


def test_5xx_in_the_expectations_is_the_cores_500_to_599() -> None:
    errors = Selection(where={"status": ("5xx",)})
    admitted = [s for s in (200, 429, 499, 500, 506, 511, 599, 600) if errors.admits({"status": s})]
    assert admitted == [500, 506, 511, 599]  # 506 was outside the old list (500-505, 507, 508, 511)


def test_an_unreadable_contract_is_an_error_not_an_empty_label_map(tmp_path: Path) -> None:
    broken = tmp_path / "contract.toml"
    broken.write_text("this is = = not toml\n")
    with pytest.raises(HarnessError):
        contract_label_map(VerifyContext(VerifyOptions(contract=broken)))


@pytest.fixture
def bare_prometheus(tmp_path: Path):
    """A real Prometheus that scrapes nothing: it declares no metadata of any series."""
    live = start_prometheus(tmp_path, {})
    try:
        yield live
    finally:
        live.stop()


def test_the_evaluation_interval_comes_from_the_running_prometheus_when_no_config_is_given(bare_prometheus) -> None:
    ctx = VerifyContext(VerifyOptions(prometheus_url=bare_prometheus.url, prometheus_config=None))
    assert _evaluation_interval(ctx) == 1.0  # start_prometheus runs with a 1 s evaluation interval


def test_a_check_error_is_the_checks_verdict_with_its_message() -> None:
    @check("test-only-check-error", group="static")
    def failing(ctx: object) -> None:
        raise CheckError("the scrape interval is unknown: pass --prometheus-config")

    from verify.checks.base import REGISTRY

    try:
        result = REGISTRY["test-only-check-error"].run(VerifyContext(VerifyOptions()))
    finally:
        del REGISTRY["test-only-check-error"]
    assert (result.verdict, result.summary) == ("error", "the scrape interval is unknown: pass --prometheus-config")
    assert result.evidence is None  # a named error, not a traceback


@pytest.mark.parametrize("url", ["localhost:9090", "http://127.0.0.1:99999", "ftp://host:9090"])
def test_a_malformed_prometheus_url_is_one_line_like_a_malformed_api_url(tmp_path: Path, url: str) -> None:
    from codesync_load.ledger import Ledger
    from tests.stack._support import run_cli

    run_dir = tmp_path / "run"
    ledger = Ledger(meta={})
    ledger.phase_start("steady", at=1000.0)
    ledger.count("http", "GET", "/health", 200, n=1)
    ledger.phase_end(at=1001.0)
    ledger.write(run_dir / "ledger.json", complete=True)
    done = run_cli("verify", str(run_dir), "--prometheus-url", url, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"codesync-load: error: Prometheus URL {url!r} "), lines
    assert "pass e.g. http://127.0.0.1:9090 (--prometheus-url)" in lines[0]
