"""The monitoring stack behind one interface: open it, use its URLs, take it down.

    >>> from codesync_load.stack import open_stack
    >>> with open_stack("local", compress=30, scrape_interval="2s") as stack:
    ...     stack.api_url, stack.prometheus_url, stack.alertmanager_url, stack.metrics_token
    >>> stack = recorded_stack()     # the one `codesync-load stack up` left running, or None

`open_stack` is the only constructor the CLI, conftest.py, the load runner and the verifier
use; the backend is a word, not an import.
"""

from __future__ import annotations

from pathlib import Path

from codesync_load.errors import HarnessError
from codesync_load.stack.base import Stack
from codesync_load.stack.state import read_state, resolve_state_dir

BACKENDS = ("local", "compose", "external")

__all__ = ["BACKENDS", "Stack", "open_stack", "recorded_stack"]


def open_stack(backend: str = "local", **options: object) -> Stack:
    """A Stack of `backend` (not started yet: call `up()` or use it as a context manager).

    Options are the backend's keyword arguments (local: state_dir, faults, compress,
    scrape_interval, database_url, redis_url, metrics_token, ports, monitoring_dir,
    ready_timeout, and api_url + yjs_url for monitoring around a CodeSync it does not start;
    external: api_url, yjs_url, prometheus_url, alertmanager_url, metrics_token, state_dir;
    compose: compose_file, metrics_token, faults, twin_args, scrape_interval, compress, ports,
    ready_timeout, state_dir). None values are dropped.
    """
    options = {key: value for key, value in options.items() if value is not None}
    if backend == "local":
        from codesync_load.stack.local import LocalStack

        _reject(options, {"prometheus_url", "alertmanager_url"}, "local")
        return LocalStack(**options)  # type: ignore[arg-type]
    if backend == "external":
        from codesync_load.stack.external import ExternalStack

        _reject(options, {"faults", "compress", "scrape_interval", "ports", "database_url", "redis_url"}, "external")
        return ExternalStack(**options)  # type: ignore[arg-type]
    if backend == "compose":
        from codesync_load.stack.compose import ComposeStack

        return ComposeStack(**options)  # type: ignore[arg-type]
    raise HarnessError(f"unknown stack backend {backend!r}; use one of {', '.join(BACKENDS)}")


def _reject(options: dict, names: set[str], backend: str) -> None:
    given = sorted(name for name in names if options.get(name) not in (None, (), [], {}, 1.0, ""))
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise HarnessError(f"{flags} do not apply to the {backend} backend; drop them or pick another --backend")


def recorded_stack(state_dir: str | Path | None = None) -> Stack | None:
    """The stack recorded in the state file (by `stack up`), or None when there is none."""
    record = read_state(resolve_state_dir(state_dir))
    if record is None:
        return None
    if record.get("corrupt"):
        raise HarnessError(f"the state file {record['corrupt']} is unreadable; delete it after checking nothing runs")
    if record.get("backend") == "external":
        from codesync_load.stack.external import ExternalStack

        return ExternalStack.from_record(record)
    if record.get("backend") == "compose":
        from codesync_load.stack.compose import ComposeStack

        return ComposeStack.from_record(record)
    from codesync_load.stack.local import LocalStack

    return LocalStack.from_record(record)
