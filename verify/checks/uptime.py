"""The uptime witness against the users: did the probe say up exactly when users could work?

    >>> REGISTRY["uptime-agrees-with-users"].run(ctx).verdict     # ctx: a run + its Prometheus
    'pass'

The stack's blackbox exporter tries the target's /health (and the database port) at the
guide's intervals (codesync_load/stack/blackbox.py); its `probe_success` scrapes are read back
from Prometheus and turned into up/down with Uptime Kuma's rule (down at the 3rd failed try in
a row). The ledger's `served` counts say, second by second, whether users were served or
failing. The check fails when the probe stayed up through a user outage long enough for it to
notice (CodeSync's /health answers 200 without asking the database: with PostgreSQL stopped,
every user fails and the probe says up), or said down while users were served.

No probe data, no `served` counts in the ledger (a run from before they existed), or no try
in the load window: not judged, never a pass.
"""

from __future__ import annotations

from codesync_load.ledger import Ledger
from codesync_load.stack.blackbox import DATABASE_JOB, HEALTH_JOB
from codesync_load.uptime import RETRIES, contradictions, transitions, user_outages, user_seconds
from verify.checks.base import CheckResult, Evidence, MissingInput, check

_SYMPTOM = "the uptime probe says up while users fail, or down while they are served"


def probe_tries(ctx, job: str, start: float, end: float) -> tuple[str, list[tuple[float, float]]]:
    """(probed instance, [(time, probe_success)]) of `job` in [start, end] from the run's Prometheus."""
    series = ctx.prom.scrapes(f'probe_success{{job="{job}"}}', start, end)
    if not series:
        return "", []
    return series[0].labels.get("instance", job), list(series[0].points)


# A probe try stamped this close to a boundary scrape of the target may land on either side of
# it: the try's request reaches /health some ms after its stamp, and the target renders its
# counters some ms after the scrape's stamp (both stamps are scrape starts). Seconds.
STRADDLE_S = 1.0


def probe_requests(ctx, start: float, end: float) -> tuple[Ledger, Ledger]:
    """The uptime probe's GET /health tries between the scrapes stamped `start` and `end`, as
    ledger rows by the status each got (`probe_http_status_code`; 0 = no answer, which the server
    never counted): (certainly inside, within STRADDLE_S of either scrape: counted or not).

    Why: the probe is traffic the harness itself sends to the target, so the exact counter
    reconciliation must expect it beside the users' requests; and a try that raced a boundary
    scrape is counted either way rather than called a counting defect (a false alarm a healthy
    CodeSync met when a try fell 10 ms before the after-scrape). Empty without a probe job."""
    inside, straddling = Ledger(), Ledger()
    try:
        series = ctx.prom.scrapes(f'probe_http_status_code{{job="{HEALTH_JOB}"}}', start - STRADDLE_S, end + STRADDLE_S)
    except MissingInput:
        return inside, straddling
    for item in series:
        certain, raced = split_tries(item.points, start, end)
        for _at, status in certain:
            inside.count("http", "GET", "/health", int(status))
        for _at, status in raced:
            straddling.count("http", "GET", "/health", int(status))
    return inside, straddling


def split_tries(
    points: list[tuple[float, float]], start: float, end: float
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(tries certainly between the scrapes stamped start and end, tries within STRADDLE_S of
    either); a try farther outside is in neither."""
    certain, raced = [], []
    for at, value in points:
        if abs(at - start) < STRADDLE_S or abs(at - end) < STRADDLE_S:
            raced.append((at, value))
        elif start < at < end:
            certain.append((at, value))
    return certain, raced


@check("uptime-agrees-with-users", group="reconcile", needs=("ledger", "window", "prom"), symptom=_SYMPTOM)
def uptime_agrees_with_users(ctx) -> CheckResult:
    """Uptime probe of /health against the ledger's per-second user outcomes."""
    window = ctx.window
    seconds = user_seconds(ctx.ledger.entries("served"))
    if not seconds:
        raise MissingInput("the ledger has no per-second `served` counts (a run recorded before they existed)")
    intervals = ctx.live_scrape_intervals
    interval = float(intervals.get(HEALTH_JOB) or 0.0)
    if not interval:
        # like Grafana: a monitoring part this stack does not have, not data that went missing
        raise MissingInput(f"no uptime probe in this stack (Prometheus runs no {HEALTH_JOB} job)", applies=False)
    lookahead = (RETRIES + 1) * interval
    instance, points = probe_tries(ctx, HEALTH_JOB, window.start - RETRIES * interval, window.end + lookahead)
    inside = [p for p in points if window.start <= p[0] <= window.end]
    if not inside:
        raise MissingInput(
            f"the uptime probe ({HEALTH_JOB}, every {interval:g} s) did not try once in the "
            f"{window.duration:.0f} s load window"
        )
    changes = transitions(points)
    found, too_short = contradictions(changes, seconds, interval, window.end + lookahead)
    served = sum(ok for ok, _ in seconds.values())
    failed = sum(bad for _, bad in seconds.values())
    outages = user_outages(seconds)
    failed_tries = sum(1 for _, v in inside if v < 1.0)
    measured = (
        f"{len(inside)} tries of {instance} every {interval:g} s ({failed_tries} failed); users: {served} "
        f"requests served, {failed} failed, {len(outages)} outage(s)"
    )
    evidence = Evidence(("probe", "from", "to", "what", "detail"))
    for item in found:
        evidence.add(instance, f"{item.start:.1f}", f"{item.end:.1f}", item.kind, item.detail)
    for change in changes:
        evidence.add(instance, f"{change.at:.1f}", "", f"probe {change.state}", "")
    db_instance, db_points = probe_tries(ctx, DATABASE_JOB, window.start, window.end + lookahead)
    for change in transitions(db_points):
        evidence.add(db_instance, f"{change.at:.1f}", "", f"probe {change.state}", "database port")
    expected = f"up while users are served, down within {RETRIES} tries of a user outage"
    if found:
        first = found[0]
        return CheckResult.failed(
            f"{instance}: the probe said {first.kind} ({first.start:.0f}..{first.end:.0f}: {first.detail})",
            measured=measured,
            expected=expected,
            evidence=evidence,
        )
    if outages and len(too_short) == len(outages):
        raise MissingInput(
            f"every user outage was too short for the probe to notice ({'; '.join(too_short)}); {measured}"
        )
    note = f"; not judged: {'; '.join(too_short)}" if too_short else ""
    return CheckResult.passed(
        f"{instance}: the probe agreed with the users ({len(inside)} tries, {len(outages)} user outage(s)){note}",
        measured=measured,
        expected=expected,
        evidence=evidence,
    )
