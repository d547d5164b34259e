"""Fixtures of the live checks' tests: twins on real PostgreSQL and Redis, a pool of local stacks.

The `slow` marker's exclusion (unless CODESYNC_SLOW=1) lives in tests/conftest.py, for every test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from codesync_load.contract import load_routes
from codesync_load.twin_process import TwinProcess, start_twin
from tests.conftest import new_redis_prefix, stopped_at_exit
from verify.checks import REGISTRY, CheckResult
from verify.context import VerifyContext, VerifyOptions
from verify.live import LiveTarget, StackPool, attach_live, local_stack_factory

TOKEN = "verify-live-metrics-token"  # fixed: this module may be imported twice (plugin and package)


def csrf_refusals(result: CheckResult) -> list[tuple]:
    """csrf-enforced's refusal rows, after asserting the contract: every state-changing route of
    codesync_load/contract/routes.toml (csrf = true), the invitation routes included, refuses a
    missing token (401 CSRF_MISSING) and a wrong one (401 CSRF_INVALID); none is left uncovered."""
    assert result.evidence is not None, result.render()
    guarded = {f"{r.method} {r.path}" for r in load_routes() if r.csrf}
    refusals = [row for row in result.evidence.rows if row[1] in ("missing", "wrong")]
    assert len(guarded) == CSRF_ROUTES and len(refusals) == 2 * CSRF_ROUTES, result.render()
    assert {row[0] for row in refusals} == guarded, result.render()
    assert not [row for row in result.evidence.rows if str(row[4]).startswith("not covered")], result.render()
    assert "not covered" not in result.summary
    assert {(row[2], row[3]) for row in refusals if row[1] == "missing"} == {(401, "CSRF_MISSING")}
    assert {(row[2], row[3]) for row in refusals if row[1] == "wrong"} == {(401, "CSRF_INVALID")}
    return refusals


CSRF_ROUTES = 13  # the contract's state-changing routes: 10 of auth, sessions and files, 3 of invitations


# authorization-matrix's attempts: 10 state-changing by a stranger, 4 PRIVATE reads, 3 by a viewer
MATRIX_PROBES = 17


def authz_refusals(result: CheckResult) -> set[tuple[object, object]]:
    """authorization-matrix's (status, code) answers to its attempts, after asserting the read-back
    found everything as it was (the session, participants, files, contents, invitations)."""
    assert result.evidence is not None, result.render()
    attempts = [row for row in result.evidence.rows if row[0] != "owner"]
    assert len(attempts) == MATRIX_PROBES, result.render()
    read_back = [row for row in result.evidence.rows if row[0] == "owner"]
    assert len(read_back) == 7 and all(row[3] == row[5] for row in read_back), result.render()
    return {(row[3], row[4]) for row in attempts}


def hostile_answers(result: CheckResult) -> dict[str, object]:
    """hostile-inputs-harmless's answers by input, after asserting the contract's answers to
    malformed JSON, a huge body, a Yjs text frame, a truncated sync update, and /health after."""
    assert result.verdict == "pass", result.render()
    assert result.evidence is not None
    answers = {row[0]: row[1] for row in result.evidence.rows}
    assert answers["malformed JSON (POST /api/sessions)"] == "400 VALIDATION_ERROR"
    assert answers["body of 11 MiB (PUT /api/sessions/:id/files/:path/content)"] in (
        "413 PAYLOAD_TOO_LARGE",
        "0 closed",
    )
    assert answers["Yjs text frame"] == "closed 1003"
    assert answers["Yjs truncated sync update"] == "closed 1002"
    assert answers["GET /health afterwards"] == 200
    return answers


@pytest.fixture(scope="module")
def start_target(
    tmp_path_factory: pytest.TempPathFactory, pg_url: str, redis_url: str, run_id: str
) -> Iterator[Callable[..., TwinProcess]]:
    """Start twins on this run's PostgreSQL database and a Redis prefix of their own; all stopped at the end."""
    with stopped_at_exit() as started:

        def start(*faults: str, token: str | None = TOKEN, extra_args: tuple[str, ...] = ()) -> TwinProcess:
            work = tmp_path_factory.mktemp("twin")
            twin = start_twin(
                work,
                faults=faults,
                env={
                    "DATABASE_URL": pg_url,
                    "REDIS_URL": redis_url,
                    "CODESYNC_REDIS_PREFIX": new_redis_prefix(run_id),
                    "METRICS_TOKEN": token or "",
                    "SENTRY_DSN": "",
                },
                extra_args=["--bcrypt-rounds", "4", *extra_args],
                name=f"twin{len(started)}",
            )
            started.append(twin)
            return twin

        yield start


@pytest.fixture(scope="module")
def healthy(start_target: Callable[..., TwinProcess]) -> TwinProcess:
    """One healthy twin per test module (the fault cases start their own)."""
    return start_target()


def run(name: str, ctx: VerifyContext) -> CheckResult:
    """Check `name` on `ctx`, asserting it judged: an error is a broken test setup, never a verdict."""
    result = REGISTRY[name].run(ctx)
    assert result.verdict != "error", result.render()
    return result


def live_context(
    twin: TwinProcess | None = None,
    token: str | None = TOKEN,
    pool: StackPool | None = None,
    options: VerifyOptions | None = None,
) -> VerifyContext:
    """A VerifyContext with live inputs: the twin as target and/or a stack pool."""
    ctx = VerifyContext(options or VerifyOptions())
    if twin is not None:
        attach_live(ctx, target=LiveTarget(twin.api_url, twin.yjs_url, token))
    if pool is not None:
        attach_live(ctx, pool=pool)
    return ctx


@pytest.fixture(scope="module")
def stack_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackPool]:
    """Local stacks (rules compressed 60x, 1 s scrapes) started on demand, all taken down at the end."""
    pool = StackPool(local_stack_factory(tmp_path_factory.mktemp("live-stacks")))
    try:
        yield pool
    finally:
        pool.close()
