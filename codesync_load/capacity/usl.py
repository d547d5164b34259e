"""The Universal Scalability Law, fitted by least squares (scipy).

    >>> fit = fit_usl([1, 2, 4, 8, 16], [100, 190, 340, 520, 560])
    >>> fit.sigma, fit.kappa, fit.lam, fit.n_star, fit.r2

X(N) = lambda N / (1 + sigma (N - 1) + kappa N (N - 1)): sigma is contention (the share of
work that serialises), kappa coherency (the cost of every pair of workers agreeing), lambda
the throughput of one. Peak throughput at N* = sqrt((1 - sigma) / kappa). Fitted on the
throughput points (not on latency), bounded to 0 <= sigma <= 1, kappa >= 0, lambda > 0 (a
negative coefficient has no meaning); the start lambda is the best X(N)/N of the lowest steps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import curve_fit

MIN_POINTS = 4  # three coefficients: at least one degree of freedom left


def usl(n: np.ndarray | float, lam: float, sigma: float, kappa: float) -> np.ndarray | float:
    n = np.asarray(n, dtype=float)
    return lam * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))


@dataclass(frozen=True)
class UslFit:
    lam: float
    sigma: float
    kappa: float
    r2: float
    rmse: float
    points: int
    sigma_se: float
    kappa_se: float

    @property
    def n_star(self) -> float:
        return math.sqrt((1.0 - self.sigma) / self.kappa) if self.kappa > 0 else math.inf

    @property
    def x_max(self) -> float:
        return float(usl(self.n_star, self.lam, self.sigma, self.kappa)) if math.isfinite(self.n_star) else math.inf

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "n_star": self.n_star, "x_max": self.x_max}


class FitError(ValueError):
    """Too few or unusable points for a fit; the message says what is needed."""


def fit_usl(n: Sequence[float], x: Sequence[float]) -> UslFit:
    """Least-squares USL fit of throughput `x` at concurrency `n` (FitError when it cannot be made)."""
    ns = np.asarray(n, dtype=float)
    xs = np.asarray(x, dtype=float)
    keep = np.isfinite(ns) & np.isfinite(xs) & (ns > 0) & (xs > 0)
    ns, xs = ns[keep], xs[keep]
    if ns.size < MIN_POINTS or np.unique(ns).size < MIN_POINTS:
        raise FitError(f"a USL fit needs at least {MIN_POINTS} steps at distinct concurrency; got {np.unique(ns).size}")
    order = np.argsort(ns)
    ns, xs = ns[order], xs[order]
    lam0 = float(np.max(xs[:2] / ns[:2]))
    try:
        params, cov = curve_fit(
            usl, ns, xs, p0=(lam0, 0.05, 0.001), bounds=([1e-12, 0.0, 0.0], [np.inf, 1.0, 1.0]), maxfev=20000
        )
    except (RuntimeError, ValueError) as err:
        raise FitError(f"the USL fit did not converge ({err})") from None
    lam, sigma, kappa = (float(p) for p in params)
    predicted = usl(ns, lam, sigma, kappa)
    residual = xs - predicted
    total = float(np.sum((xs - xs.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residual**2)) / total if total > 0 else 0.0
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None)) if np.all(np.isfinite(cov)) else np.full(3, math.nan)
    return UslFit(lam, sigma, kappa, r2, float(np.sqrt(np.mean(residual**2))), int(ns.size), float(se[1]), float(se[2]))
