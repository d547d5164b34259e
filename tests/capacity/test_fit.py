"""The capacity analysis' pure parts on synthetic points: the USL fit recovers known
coefficients through noise, Kneedle finds a known bend, the service model's arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pytest

from codesync_load.capacity.analysis import regression
from codesync_load.capacity.kneedle import knee
from codesync_load.capacity.usl import FitError, fit_usl, usl
from codesync_load.errors import HarnessError
from twin.service_model import parse_service_model

# Tolerances of a recovery from 10 noisy points (stated in the README too).
SIGMA_ABS = 0.02
KAPPA_REL = 0.25
NSTAR_REL = 0.20


@pytest.mark.parametrize(("sigma", "kappa", "noise"), [(0.05, 0.002, 0.02), (0.10, 0.0005, 0.03), (0.0, 0.004, 0.02)])
def test_usl_fit_recovers_known_coefficients_through_noise(sigma: float, kappa: float, noise: float) -> None:
    """Ten steps from 2 to twice the true N* (a step run must cross the peak to see kappa)."""
    rng = np.random.default_rng(20261206)
    truth = math.sqrt((1 - sigma) / kappa)
    n = np.round(np.linspace(2, 2 * truth, 10))
    x = usl(n, 10.0, sigma, kappa) * (1 + rng.normal(0, noise, n.size))
    fit = fit_usl(n, x)
    assert abs(fit.sigma - sigma) <= SIGMA_ABS, fit
    assert abs(fit.kappa - kappa) <= KAPPA_REL * kappa, fit
    assert abs(fit.n_star - truth) <= NSTAR_REL * truth, (fit.n_star, truth)
    assert fit.r2 > 0.9 and fit.points == n.size


def test_exact_points_are_fitted_exactly() -> None:
    n = np.array([1, 2, 4, 8, 16, 32], dtype=float)
    fit = fit_usl(n, usl(n, 100.0, 0.03, 0.0008))
    assert fit.lam == pytest.approx(100.0, rel=1e-4)
    assert fit.sigma == pytest.approx(0.03, abs=1e-5)
    assert fit.kappa == pytest.approx(0.0008, rel=1e-3)
    assert fit.n_star == pytest.approx(math.sqrt(0.97 / 0.0008), rel=1e-3)
    assert fit.r2 == pytest.approx(1.0, abs=1e-9)


def test_too_few_steps_is_a_fit_error_that_says_what_is_needed() -> None:
    with pytest.raises(FitError, match="at least 4 steps at distinct concurrency; got 3"):
        fit_usl([2, 4, 4, 8], [10, 18, 18, 30])


def test_kneedle_finds_the_bend_and_no_bend_in_a_line() -> None:
    n = np.arange(5, 105, 5, dtype=float)
    latency = np.where(n <= 60, 10 + 0.05 * n, 13 + 2.0 * (n - 60))  # flat, then steep after 60
    assert knee(n, latency) == 60.0
    assert knee(n, 3 * n + 1) is None  # a straight line has no knee
    assert knee([1, 2], [1, 5]) is None


def test_regression_slope_and_r2() -> None:
    import pandas as pd

    x = pd.Series([10.0, 20.0, 30.0, 40.0])
    y = 5.0e6 + 2.0e5 * x
    r = regression(x, y)
    assert r is not None and r["slope"] == pytest.approx(2.0e5) and r["r2"] == pytest.approx(1.0)
    assert regression(pd.Series([1.0, 1.0, 1.0]), pd.Series([1.0, 2.0, 3.0])) is None  # no spread in x


def test_service_model_parsing_and_delay() -> None:
    model = parse_service_model("usl:sigma=0.05,kappa=0.002,base_ms=100")
    assert model.delay_s(1) == pytest.approx(0.1)
    assert model.delay_s(10) == pytest.approx(0.1 * (1 + 0.05 * 9 + 0.002 * 90))
    assert model.n_star == pytest.approx(math.sqrt(0.95 / 0.002))
    for bad, message in [
        ("amdahl:sigma=0.1", "the only model is usl"),
        ("usl:sigma=0.05,kappa=0.002", "lacks base_ms"),
        ("usl:sigma=1.5,kappa=0.002,base_ms=4", "need 0 <= sigma < 1"),
        ("usl:sigma=x,kappa=0.002,base_ms=4", "sigma='x' is not a number"),
        ("usl:rho=1", "'rho=1' is not one of sigma, kappa, base_ms=N"),
    ]:
        with pytest.raises(HarnessError, match=message.replace("(", r"\(")):
            parse_service_model(bad)
