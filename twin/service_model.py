"""A documented service model for the twin: request handling that follows a known USL curve.

    $ codesync-load twin --service-model usl:sigma=0.05,kappa=0.002,base_ms=100
    >>> model = parse_service_model("usl:sigma=0.05,kappa=0.002,base_ms=100")
    >>> model.delay_s(1), round(model.delay_s(10), 4)
    (0.1, 0.163)

Why: `codesync-load capacity` fits the Universal Scalability Law to a step run; a fit can
only be trusted once it has recovered coefficients that are known. Under this model every
`/api` request of the twin waits, before it is handled,

    base * (1 + sigma * (n - 1) + kappa * n * (n - 1))

where n is the number of `/api` requests in flight at the twin when it arrives (itself
included): a contended section (each of the n - 1 others costs it sigma * base, as if
queued behind a lock for that share of their work) and a coherency cost (kappa * base for
each pair of in-flight requests, as if every request had to agree with every other). With N
clients that send back to back (no think time), n is N, the response time is
R(N) = base * (1 + sigma (N - 1) + kappa N (N - 1)) and Little's law gives the USL throughput
X(N) = N / R(N) = lambda N / (1 + sigma (N - 1) + kappa N (N - 1)), lambda = 1 / base, with
its peak at N* = sqrt((1 - sigma) / kappa).

The wait is an asyncio sleep (no CPU burnt), so the curve is the model's and not the
machine's. Off by default: the default twin is contract-faithful, and this model is not
CodeSync's behaviour; it exists only to check the capacity analysis.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from codesync_load.errors import HarnessError

KEYS = ("sigma", "kappa", "base_ms")


@dataclass(frozen=True)
class ServiceModel:
    sigma: float
    kappa: float
    base_s: float

    def delay_s(self, in_flight: int) -> float:
        n = max(1, in_flight)
        return self.base_s * (1.0 + self.sigma * (n - 1) + self.kappa * n * (n - 1))

    @property
    def n_star(self) -> float:
        """The concurrency of peak throughput, sqrt((1 - sigma) / kappa); inf without coherency cost."""
        return math.sqrt((1.0 - self.sigma) / self.kappa) if self.kappa > 0 else math.inf

    def describe(self) -> str:
        return f"usl:sigma={self.sigma:g},kappa={self.kappa:g},base_ms={self.base_s * 1000:g}"


def parse_service_model(text: str) -> ServiceModel:
    """`usl:sigma=S,kappa=K,base_ms=B` as a ServiceModel; HarnessError (one line) otherwise."""
    example = "usl:sigma=0.05,kappa=0.002,base_ms=100"
    kind, _, params = text.partition(":")
    if kind != "usl":
        raise HarnessError(f"--service-model {text!r}: the only model is usl; pass e.g. {example}")
    values: dict[str, float] = {}
    for item in params.split(","):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or key not in KEYS:
            raise HarnessError(f"--service-model {text!r}: {item!r} is not one of {', '.join(KEYS)}=N; e.g. {example}")
        try:
            values[key] = float(raw)
        except ValueError:
            raise HarnessError(f"--service-model {text!r}: {key}={raw!r} is not a number") from None
    missing = [k for k in KEYS if k not in values]
    if missing:
        raise HarnessError(f"--service-model {text!r} lacks {', '.join(missing)}; e.g. {example}")
    if not (0 <= values["sigma"] < 1 and values["kappa"] >= 0 and values["base_ms"] > 0):
        raise HarnessError(f"--service-model {text!r}: need 0 <= sigma < 1, kappa >= 0, base_ms > 0")
    return ServiceModel(values["sigma"], values["kappa"], values["base_ms"] / 1000.0)


def service_model_middleware(model: ServiceModel) -> Callable[..., Awaitable[web.StreamResponse]]:
    """An aiohttp middleware delaying every `/api` request by `model.delay_s(in flight)`."""
    state = {"in_flight": 0}

    @web.middleware
    async def middleware(request: web.Request, handler: Callable[..., Awaitable[web.StreamResponse]]):
        if not request.path.startswith("/api/"):
            return await handler(request)
        state["in_flight"] += 1
        try:
            await asyncio.sleep(model.delay_s(state["in_flight"]))
            return await handler(request)
        finally:
            state["in_flight"] -= 1

    return middleware
