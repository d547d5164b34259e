"""Open the twin's storage: PostgreSQL when DATABASE_URL is set, else an SQLite file.

    >>> store = await open_store(config, metrics)
    >>> await store.save_yjs_state("cabc123:src/main.py", state_bytes)
    >>> await store.load_yjs_state("cabc123:src/main.py")

Each twin process opens its own store (its own connection, its own metrics), and the
schema is created on open, idempotently, so a restart on the same database keeps the data.
A bad DATABASE_URL or an unwritable SQLite path fails here, as one HarnessError line.
"""

from __future__ import annotations

from twin.config import TwinConfig
from twin.metrics import TwinMetrics
from twin.storage.executor import PostgresExecutor, SqliteExecutor, StoreConflict
from twin.storage.sql import SqlStore, split_document

__all__ = ["SqlStore", "StoreConflict", "open_store", "split_document"]


async def open_store(config: TwinConfig, metrics: TwinMetrics) -> SqlStore:
    """A connected store with its schema in place; queries are metered on `metrics`."""
    if config.database_url:
        executor: PostgresExecutor | SqliteExecutor = await PostgresExecutor.open(config.database_url, metrics)
    else:
        executor = await SqliteExecutor.open(config.sqlite_path, metrics)
    store = SqlStore(executor)
    try:
        await store.create_schema()
    except BaseException:
        await executor.close()
        raise
    return store
