"""Server errors (5xx) met while a check probes: the target's failure, never the check's symptom.

    >>> errors = ServerErrors()
    >>> errors.note(result, "missing token")     # True (and recorded) when result is a 5xx
    True
    >>> errors.raise_if_any("CSRF", evidence)
    TargetFault: cannot judge CSRF: the target answered 500 INTERNAL_ERROR on PUT
    /api/sessions/:id/files/:path/content (missing token)

Why: a check tests for one symptom (CSRF not enforced, a limit not counted, hostile input
doing harm). A target that answers 500 to a probe has not shown that symptom, it has failed:
the check must say so, with the status and the route, and fail for that reason (Check.run
turns the TargetFault into a failed result). A definite symptom seen on the other probes is
still reported as the symptom: the check decides which comes first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from codesync_load.errors import is_server_error
from scenarios.clients.rest import ApiResult
from verify.checks.base import Evidence, TargetFault

__all__ = ["ServerErrors", "answer_text", "is_server_error"]

SHOWN = 3  # server errors named in a summary; the rest are counted (the evidence has them all)


def answer_text(result: ApiResult) -> str:
    """'500 INTERNAL_ERROR on PUT /api/sessions/:id/files/:path/content'."""
    return f"{result.status} {result.error_code or 'without an error envelope'} on {result.method} {result.route}"


@dataclass
class ServerErrors:
    """The 5xx answers a check met while probing, each one line with status, route and context."""

    seen: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.seen)

    def add(self, text: str) -> None:
        self.seen.append(text)

    def note(self, result: ApiResult, context: str = "") -> bool:
        """Record `result` when it is a 5xx; True then (the caller must not judge it)."""
        if not is_server_error(result.status):
            return False
        self.add(answer_text(result) + (f" ({context})" if context else ""))
        return True

    def text(self) -> str:
        shown = "; ".join(self.seen[:SHOWN])
        more = len(self.seen) - SHOWN
        return f"the target answered {shown}" + (f"; and {more} more 5xx" if more > 0 else "")

    def raise_if_any(self, judging: str, evidence: Evidence | None = None) -> None:
        """TargetFault "cannot judge `judging`: the target answered ..." when any 5xx was seen."""
        if self.seen:
            raise TargetFault(self.text(), judging=judging, evidence=evidence)
