"""Everything a twin needs to start, in one immutable value.

    >>> cfg = TwinConfig.from_env(api_port=0, yjs_port=0)

Values come from command-line options first, then the environment variables a real
CodeSync deployment reads (DATABASE_URL, REDIS_URL, METRICS_TOKEN, JWT_SECRET, CSRF_SECRET,
SENTRY_DSN), then defaults that make the twin run anywhere (SQLite file, in-process state).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path

from twin.faults import ActiveFaults


@dataclass(frozen=True)
class RateLimits:
    """The contract's limits; window in seconds. Tests may shrink the window, not the logic."""

    window_s: float = 60.0
    files_max: int = 60
    search_max: int = 30
    socketio_connections_max: int = 100
    yjs_connections_max: int = 100


@dataclass(frozen=True)
class TwinConfig:
    host: str = "127.0.0.1"
    api_port: int = 4000
    yjs_port: int = 4001
    database_url: str | None = None
    sqlite_path: Path = Path("codesync-twin.sqlite3")
    redis_url: str | None = None
    redis_prefix: str = "codesync:"
    metrics_token: str | None = None
    jwt_secret: str = field(default_factory=lambda: secrets.token_hex(32))
    csrf_secret: str = field(default_factory=lambda: secrets.token_hex(32))
    sentry_dsn: str | None = None
    bcrypt_rounds: int = 12
    rate_limits: RateLimits = field(default_factory=RateLimits)
    faults: ActiveFaults = field(default_factory=ActiveFaults)
    shutdown_timeout_s: float = 5.0
    max_body_bytes: int = 1024 * 1024
    max_ws_message_bytes: int = 16 * 1024 * 1024
    yjs_ping_interval_s: float = 30.0
    request_timeout_s: float = 30.0
    ready_file: Path | None = None
    # How an over-limit Socket.IO connection is refused: "disconnect" (CodeSync: accept, then
    # disconnect at once from the server side) or "connect_error" (the other shape clients meet).
    socketio_refusal: str = "disconnect"
    # Extra delay before a Yjs document's stored state is applied (the load is asynchronous
    # either way, as in CodeSync); tests widen the window in which a client syncs first.
    yjs_load_delay_s: float = 0.0
    # CodeSync's /health answers 200 without asking the database; True runs the twin as a fixed
    # CodeSync whose /health answers 503 when the database does not answer (--health-checks-db)
    health_checks_db: bool = False
    # twin.service_model.ServiceModel, off by default: the default twin is contract-faithful
    service_model: object | None = None

    @classmethod
    def from_env(cls, **overrides: object) -> TwinConfig:
        """Defaults, overlaid by the deployment's environment, overlaid by `overrides`."""
        env = os.environ
        base = cls()
        from_env: dict[str, object] = {
            "database_url": env.get("DATABASE_URL") or None,
            "redis_url": env.get("REDIS_URL") or None,
            "metrics_token": env.get("METRICS_TOKEN") or None,
            "sentry_dsn": env.get("SENTRY_DSN") or None,
        }
        if env.get("JWT_SECRET"):
            from_env["jwt_secret"] = env["JWT_SECRET"]
        if env.get("CSRF_SECRET"):
            from_env["csrf_secret"] = env["CSRF_SECRET"]
        if env.get("CODESYNC_REDIS_PREFIX"):
            from_env["redis_prefix"] = env["CODESYNC_REDIS_PREFIX"]
        merged = {**from_env, **{k: v for k, v in overrides.items() if v is not None}}
        return replace(base, **merged)
