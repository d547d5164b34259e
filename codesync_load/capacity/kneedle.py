"""The knee of a curve (Kneedle, Satopaa et al. 2011), written out: where latency starts to bend.

    >>> knee([10, 20, 30, 40, 50], [5, 5.2, 5.5, 9, 20])
    30.0

For an increasing convex curve (latency against load): scale x and y to [0, 1], take the
difference x' - y' (how far the curve stays below the diagonal), and the knee is the point
where that difference is largest. None when there is no bend (fewer than 3 points, a flat or
a straight curve: the largest difference is ~0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MIN_BEND = 0.05  # a difference below this share of the range is a straight line, not a knee


def knee(x: Sequence[float], y: Sequence[float]) -> float | None:
    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)
    keep = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[keep], ys[keep]
    if xs.size < 3:
        return None
    order = np.argsort(xs)
    xs, ys = xs[order], ys[order]
    xspan, yspan = xs[-1] - xs[0], ys.max() - ys.min()
    if xspan <= 0 or yspan <= 0:
        return None
    xn = (xs - xs[0]) / xspan
    yn = (ys - ys.min()) / yspan
    diff = xn - yn
    best = int(np.argmax(diff))
    if diff[best] < MIN_BEND or best in (0, xs.size - 1):
        return None
    return float(xs[best])
