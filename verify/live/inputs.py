"""What the live checks run against, attached to a VerifyContext by whoever has a stack.

    >>> attach_live(ctx, target=LiveTarget.from_stack(stack))          # integrity checks
    >>> attach_live(ctx, pool=StackPool(local_stack_factory(tmp)))     # alert scenarios
    >>> live_inputs(ctx).require_target()                              # MissingInput if none

The verify context loads files and Prometheus lazily but knows nothing of a running target;
rather than widen it, live inputs ride on the context as one attribute, `live`. A context
without it gets every live check skipped with the reason, never failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from codesync_load.stack import Stack
    from verify.live.pool import StackPool

ATTRIBUTE = "live"


def _missing(reason: str, applies: bool = True) -> Exception:
    """MissingInput, imported late: verify.checks imports the live checks, which import this module."""
    from verify.checks.base import MissingInput

    return MissingInput(reason, applies=applies)


@dataclass(frozen=True)
class LiveTarget:
    """The CodeSync endpoints a security/integrity check talks to (any backend, or a bare twin)."""

    api_url: str
    yjs_url: str
    metrics_token: str | None = None
    # How to restart the target (verify/live/restart.py): --restart-cmd, or a twin's own in tests.
    restart: Callable[[], None] | None = field(default=None, compare=False)

    @classmethod
    def from_stack(cls, stack: Stack) -> LiveTarget:
        if not stack.api_url or not stack.yjs_url:
            raise _missing(f"the {stack.backend} stack names no API or Yjs URL")
        return cls(stack.api_url, stack.yjs_url, stack.metrics_token)

    @property
    def yjs_http_url(self) -> str:
        """The Yjs port over plain HTTP (its /metrics)."""
        return "http" + self.yjs_url[2:] if self.yjs_url.startswith("ws") else self.yjs_url


@dataclass
class LiveInputs:
    """A target for the integrity checks and/or a pool of stacks for the alert scenarios."""

    target: LiveTarget | None = None
    pool: StackPool | None = None

    def require_target(self) -> LiveTarget:
        if self.target is None:
            raise _missing("not asked for: no live target given (--live, or a gate's stack)", applies=False)
        return self.target

    def require_pool(self) -> StackPool:
        if self.pool is None:
            raise _missing(
                "not asked for (--alert-scenarios): alert scenarios start their own local stacks "
                "(twin faults are fixed at start)",
                applies=False,
            )
        return self.pool


def attach_live(ctx: Any, *, target: LiveTarget | None = None, pool: StackPool | None = None) -> LiveInputs:
    """Give `ctx` live inputs (kept across calls: a second call adds what the first lacked)."""
    live = getattr(ctx, ATTRIBUTE, None) or LiveInputs()
    if target is not None:
        live.target = target
    if pool is not None:
        live.pool = pool
    setattr(ctx, ATTRIBUTE, live)
    return live


def live_inputs(ctx: Any) -> LiveInputs:
    """The context's live inputs; MissingInput (the check is skipped) when none were attached."""
    live = getattr(ctx, ATTRIBUTE, None)
    if live is None:
        raise _missing("not asked for: no live target given (--live, or a gate's stack)", applies=False)
    return live
