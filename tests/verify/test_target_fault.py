"""How a check run treats a target that fails the check's own set-up."""

from __future__ import annotations


def test_a_5xx_during_a_checks_set_up_fails_that_check_instead_of_stopping_the_harness() -> None:
    """A target that answers 500 while a check prepares (error-burst) is the target's failure."""
    from verify.checks.base import Check, TargetFault

    def raising(ctx: object) -> None:
        raise TargetFault("create session failed on the target (500 INTERNAL_ERROR); is the API healthy?")

    result = Check("probe", "integrity", (), "", raising).run(object())
    assert (result.verdict, result.summary) == (
        "fail",
        "the target failed the check's set-up: create session failed on the target (500 INTERNAL_ERROR); "
        "is the API healthy?",
    )


def test_a_5xx_api_error_in_a_check_is_the_targets_failure_and_a_4xx_is_the_checks_error() -> None:
    from scenarios.clients.rest import ApiError, ApiResult
    from verify.checks.base import Check

    def failing_with(status: int):
        def check(ctx: object) -> None:
            raise ApiError(ApiResult("PUT", "/api/x", "/api/x", status, 0.0, b"", None, None, None))

        return check

    server = Check("probe", "integrity", (), "", failing_with(500)).run(object())
    client = Check("probe", "integrity", (), "", failing_with(404)).run(object())
    assert server.verdict == "fail" and server.summary.startswith("the target failed the check's set-up: PUT /api/x")
    assert client.verdict == "error" and client.summary.startswith("the check itself failed: ApiError(")
