"""The shape every check has, and the registry that lists them under one name each.

    >>> @check("rules-windows-fit-scrape", needs=("rules", "prometheus_config"),
    ...        symptom="a rule window too short for the scrape interval")
    ... def windows(ctx):
    ...     return CheckResult.passed("every window >= 4x scrape interval", measured="12 windows")
    >>> [c.name for c in selected(["rules-*"])]
    ['rules-windows-fit-scrape', ...]

Why one shape: the pytest suite, the `codesync-load verify` command and the reports list the
same checks under the same names, each with what it needed, what it measured, what it
expected, a verdict and the evidence (a table) behind a failure. Like ClusterLoader2's
measurements, but a check is one function of a context that loads its inputs lazily: a check
whose input is missing (no run directory, no Prometheus) is skipped with the reason, never
failed, and never allowed to crash the run of the others.
"""

from __future__ import annotations

import fnmatch
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from codesync_load.errors import HarnessError, TargetHttpError, TargetUnreachable, is_server_error
from codesync_load.results import CheckResult, Evidence, Verdict, first_failure
from verify.prom import PrometheusLost

__all__ = [
    "Check",
    "CheckError",
    "CheckResult",
    "Evidence",
    "MissingInput",
    "TargetFault",
    "Verdict",
    "check",
    "first_failure",
    "run_checks",
    "selected",
]


class TargetFault(Exception):
    """The target answered one of a check's own calls with a server error (5xx): the check fails
    with this reason, because a target that cannot serve the check is what the check is there to
    catch (a HarnessError, by contrast, means the harness could not run: no target, bad options).

    Met during the set-up, the summary says so; met while probing (`judging` names what was to be
    judged), it says "cannot judge CSRF: the target answered 500 ... on PUT ...", never the symptom
    the check tests for: a target that failed the probe has not shown that symptom. `evidence`
    is what the check had gathered up to then.
    """

    def __init__(self, message: str, *, judging: str | None = None, evidence: Evidence | None = None) -> None:
        super().__init__(message)
        self.judging = judging
        self.evidence = evidence

    @property
    def summary(self) -> str:
        if self.judging:
            return f"cannot judge {self.judging}: {self}"
        return f"the target failed the check's set-up: {self}"


def unreachable_reason(err: BaseException) -> str | None:
    """Why a check's endpoint could not be reached (no answer, refused, timed out), or None.

    Why: an endpoint that does not answer says nothing about the symptom a check tests for, and
    must not end the other checks (as a HarnessError would) nor show a traceback (as a bug
    does). The clients' reasons already name the endpoint (method, route and URL, or the
    WebSocket URL) and the timeout; an HTTP client's "no answer" is status 0.
    """
    if isinstance(err, TargetHttpError) and err.status == 0:
        return str(err)
    if isinstance(err, TargetUnreachable | OSError):
        return str(err) or type(err).__name__
    return None


class CheckError(Exception):
    """A check cannot decide what it is to judge (e.g. whether a series is a counter, the scrape
    interval): its verdict is `error` with this message, never a silent default that changes what
    is judged. Unlike a bug, no traceback is attached: the message names the cause and the fix."""


class MissingInput(Exception):
    """A check's input is not available (e.g. no Prometheus): the check is skipped, with this reason.

    `applies=False` when the check does not apply to this target or invocation (no Grafana in the
    stack, live checks not asked for): listed as not applicable. Otherwise the check applies but
    could not judge, which `--strict` turns into a failure.
    """

    def __init__(self, reason: str, *, applies: bool = True) -> None:
        super().__init__(reason)
        self.applies = applies


CheckFunc = Callable[[Any], CheckResult]


@dataclass(frozen=True)
class Check:
    """A named check: the inputs it needs, the symptom a failure means, the function."""

    name: str
    group: str
    needs: tuple[str, ...]
    symptom: str
    func: CheckFunc

    def run(self, ctx: Any) -> CheckResult:
        """Run against a context; missing inputs skip, harness errors propagate, bugs are `error`."""
        import time

        started = time.monotonic()
        try:
            for need in self.needs:
                ctx.require(need)
            idle = idle_run(ctx) if "ledger" in self.needs else None
            result = CheckResult.nothing_to_judge(idle) if idle else self.func(ctx)
        except MissingInput as missing:
            result = CheckResult.skipped(str(missing), applies=missing.applies)
        except PrometheusLost as lost:  # this check could not judge; the others may not need it
            result = CheckResult("error", f"cannot judge ({self.symptom}): {lost}")
        except HarnessError:
            raise
        except CheckError as err:
            result = CheckResult("error", str(err))
        except Exception as err:  # a bug in a check must not hide the other checks' verdicts
            if isinstance(err, TargetFault):  # the target failed the check's own calls: its failure
                result = CheckResult.failed(err.summary, evidence=err.evidence)
            elif isinstance(err, TargetHttpError) and is_server_error(err.status):
                result = CheckResult.failed(f"the target failed the check's set-up: {err}")
            elif unreachable_reason(err) is not None:  # no answer: not judged, the other checks run
                result = CheckResult("error", f"cannot judge ({self.symptom}): no answer: {unreachable_reason(err)}")
            else:
                tb = traceback.format_exc(limit=4).strip().splitlines()
                result = CheckResult("error", f"the check itself failed: {err!r}", evidence=Evidence(("trace",)))
                assert result.evidence is not None
                for line in tb[-6:]:
                    result.evidence.add(line)
        result.name = self.name
        result.inputs = {need: ctx.describe(need) for need in self.needs}
        result.seconds = time.monotonic() - started
        return result


def idle_run(ctx: Any) -> str | None:
    """Why the run's ledger gives a ledger-based check nothing to judge (no HTTP request and no
    connection: an empty run, whose zeros would agree with anything); None when it has traffic."""
    ledger = ctx.ledger
    if ledger.total("http") or ledger.total("connection") or ledger.total("failure"):
        return None
    return f"the run's ledger ({ctx.describe('ledger')}) records no HTTP request and no connection"


REGISTRY: dict[str, Check] = {}
# The order the command and the reports list groups in: static findings first, live ones last.
GROUP_ORDER = ("static", "alerts", "dashboard", "reconcile")


def check(name: str, *, group: str, needs: Sequence[str] = (), symptom: str = "") -> Callable[[CheckFunc], CheckFunc]:
    """Register a check function under `name` (unique; names are what users and CI see)."""

    def register(func: CheckFunc) -> CheckFunc:
        if name in REGISTRY:
            raise ValueError(f"check {name!r} is registered twice")
        REGISTRY[name] = Check(name, group, tuple(needs), symptom or (func.__doc__ or "").strip().split("\n")[0], func)
        return func

    return register


def selected(patterns: Iterable[str] | None = None, groups: Iterable[str] | None = None) -> list[Check]:
    """Registered checks whose name matches any glob in `patterns` (all when None), in registry order."""
    pats = list(patterns or [])
    wanted_groups = set(groups or [])
    out = []
    for chk in REGISTRY.values():
        if pats and not any(fnmatch.fnmatchcase(chk.name, p) for p in pats):
            continue
        if wanted_groups and chk.group not in wanted_groups:
            continue
        out.append(chk)
    order = {g: i for i, g in enumerate(GROUP_ORDER)}
    return sorted(out, key=lambda c: order.get(c.group, len(order)))


def run_checks(ctx: Any, checks: Iterable[Check]) -> list[CheckResult]:
    return [chk.run(ctx) for chk in checks]
