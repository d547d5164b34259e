"""What each of the twin's two processes shares with its handlers.

    >>> ctx = ProcessContext(config, metrics, store, limiter)

CodeSync runs an API process and a Yjs process; the twin runs both in one Python process
but gives each its own context (its own metrics registry and store connection, a shared
rate limiter), so their telemetry stays as separate as in a real deployment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from twin.config import TwinConfig
from twin.metrics import TwinMetrics

if TYPE_CHECKING:
    from twin.ratelimit import RateLimiter
    from twin.storage.base import Store


@dataclass
class ProcessContext:
    config: TwinConfig
    metrics: TwinMetrics
    store: Store
    limiter: RateLimiter
    # Free-form slots for components attached later (e.g. the Socket.IO server).
    extras: dict[str, Any] = field(default_factory=dict)
