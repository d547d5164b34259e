"""The one metered way to run a query, for SQLite and for PostgreSQL.

    >>> ex = await SqliteExecutor.open(Path("twin.sqlite3"), metrics)
    >>> row = await ex.run("findUnique", "User", "SELECT * FROM users WHERE id = %s", (uid,), fetch="one")

Every query names the Prisma operation and model CodeSync's backend would have used, so
`codesync_db_queries_total{operation,model,status}` reads the same on the twin as on
CodeSync. Queries are written once with `%s` placeholders; the SQLite executor rewrites
them to `?`. A unique-key violation surfaces as `StoreConflict`; every other failure is
counted with status="error" and re-raised.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import dict_row

from codesync_load.errors import HarnessError
from twin.metrics import TwinMetrics

Fetch = Literal["none", "one", "all"]
# Any constant works; it only serialises concurrent schema creation on one database.
_SCHEMA_LOCK_KEY = 0x0C0D35
_PG_CONNECT_TIMEOUT_S = 5


class StoreConflict(Exception):
    """A unique key already holds this value (e.g. an e-mail that is registered)."""


class _Meter:
    """Times one query and records it with its status; a unique-key violation becomes StoreConflict.

        with _Meter(metrics, "findUnique", "User", _is_pg_unique_violation):
            return await query()

    Both executors count the same way; only what counts as a unique violation differs.
    """

    def __init__(
        self, metrics: TwinMetrics, operation: str, model: str, is_conflict: Callable[[BaseException], bool]
    ) -> None:
        self.metrics, self.operation, self.model, self.is_conflict = metrics, operation, model, is_conflict
        self.started = time.perf_counter()

    def __enter__(self) -> _Meter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        status = "success" if exc is None else "error"
        self.metrics.db_query(self.operation, self.model, status, time.perf_counter() - self.started)
        if exc is not None and self.is_conflict(exc):
            raise StoreConflict(str(exc)) from exc


def _is_sqlite_unique_violation(err: BaseException) -> bool:
    return isinstance(err, sqlite3.IntegrityError) and "UNIQUE" in str(err)


def _is_pg_unique_violation(err: BaseException) -> bool:
    return isinstance(err, psycopg.errors.UniqueViolation)


class SqliteExecutor:
    """One sqlite3 connection on its own thread: serialised, never blocking the event loop.

    WAL mode and a busy timeout let the API store and the Yjs store (two connections to the
    same file) read and write side by side.
    """

    dialect = "sqlite"

    def __init__(self, path: Path, metrics: TwinMetrics) -> None:
        self.path = path
        self.metrics = metrics
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="twin-sqlite")
        self._conn: sqlite3.Connection | None = None

    @classmethod
    async def open(cls, path: Path, metrics: TwinMetrics) -> SqliteExecutor:
        ex = cls(path, metrics)
        try:
            await ex._call(ex._connect)
        except (sqlite3.Error, OSError) as err:
            ex._thread.shutdown(wait=False)
            raise HarnessError(
                f"cannot open SQLite database {path} ({err}); pass --sqlite-path to a writable file or set DATABASE_URL"
            ) from None
        return ex

    def _connect(self) -> None:
        conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=10.0)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=10000")
        self._conn = conn

    async def _call(self, fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)

    async def ddl(self, statements: Sequence[str]) -> None:
        """Create the schema in one transaction (not metered: Prisma's migrations are not either)."""

        def work() -> None:
            assert self._conn is not None
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in statements:
                    self._conn.execute(statement)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

        await self._call(work)

    async def run(self, operation: str, model: str, sql: str, params: Sequence[Any] = (), fetch: Fetch = "none") -> Any:
        query = sql.replace("%s", "?")

        def work() -> Any:
            assert self._conn is not None
            cursor = self._conn.execute(query, tuple(params))
            if fetch == "one":
                row = cursor.fetchone()
                return dict(row) if row is not None else None
            if fetch == "all":
                return [dict(row) for row in cursor.fetchall()]
            return cursor.rowcount

        with _Meter(self.metrics, operation, model, _is_sqlite_unique_violation):
            return await self._call(work)

    async def close(self) -> None:
        def work() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await self._call(work)
        self._thread.shutdown(wait=True)


def _redacted(url: str) -> str:
    """The URL without its password, for error messages."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
        user = f"{parts.username}@" if parts.username else ""
        return f"{parts.scheme}://{user}{host}{port}{parts.path}"
    except ValueError:
        return "<unparseable URL>"


class PostgresExecutor:
    """One psycopg async connection in autocommit mode, one query at a time.

    A single connection guarded by a lock keeps the twin simple and its query counts exact;
    a dropped connection is re-opened once before the query that finds it broken.
    """

    dialect = "postgresql"

    def __init__(self, url: str, metrics: TwinMetrics) -> None:
        self.url = url
        self.metrics = metrics
        self._lock = asyncio.Lock()
        self._conn: psycopg.AsyncConnection | None = None

    @classmethod
    async def open(cls, url: str, metrics: TwinMetrics) -> PostgresExecutor:
        ex = cls(url, metrics)
        await ex._connect()
        return ex

    async def _connect(self) -> None:
        try:
            self._conn = await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, row_factory=dict_row, connect_timeout=_PG_CONNECT_TIMEOUT_S
            )
        except (psycopg.Error, ValueError) as err:
            reason = " ".join(str(err).split()) or type(err).__name__
            raise HarnessError(
                f"cannot connect to PostgreSQL at {_redacted(self.url)} ({reason}); check DATABASE_URL"
            ) from None

    async def ddl(self, statements: Sequence[str]) -> None:
        """Create the schema under an advisory lock, so twins starting together do not race."""
        assert self._conn is not None
        async with self._lock, self._conn.transaction():
            await self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
            for statement in statements:
                await self._conn.execute(statement)

    async def run(self, operation: str, model: str, sql: str, params: Sequence[Any] = (), fetch: Fetch = "none") -> Any:
        with _Meter(self.metrics, operation, model, _is_pg_unique_violation):
            async with self._lock:
                if self._conn is None or self._conn.broken or self._conn.closed:
                    await self._connect()
                assert self._conn is not None
                cursor = await self._conn.execute(sql, tuple(params))
                if fetch == "one":
                    return await cursor.fetchone()
                if fetch == "all":
                    return await cursor.fetchall()
                return cursor.rowcount

    async def close(self) -> None:
        async with self._lock:
            if self._conn is not None:
                await self._conn.close()
                self._conn = None


Executor = SqliteExecutor | PostgresExecutor
