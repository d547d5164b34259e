"""Sentry reporting through the real sentry-sdk, on only when SENTRY_DSN is set.

>>> init_sentry(config)          # no-op without a DSN
>>> capture_error(exc)           # what the error handler calls for 5xx answers
"""

from __future__ import annotations

from codesync_load.errors import HarnessError
from twin.config import TwinConfig

_enabled = False


def init_sentry(config: TwinConfig) -> None:
    global _enabled
    if not config.sentry_dsn:
        return
    import sentry_sdk
    from sentry_sdk.utils import BadDsn

    try:
        sentry_sdk.init(dsn=config.sentry_dsn, traces_sample_rate=0.0, default_integrations=False)
    except BadDsn as err:
        raise HarnessError(f"SENTRY_DSN is not a valid DSN ({err}); fix it or unset SENTRY_DSN") from None
    _enabled = True


def capture_error(error: BaseException) -> None:
    if _enabled:
        import sentry_sdk

        sentry_sdk.capture_exception(error)
