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
