"""Engines for the history database, the same on every dialect we support."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from scheduler.config import sqlalchemy_url

__all__ = ["make_engine", "sqlalchemy_url"]


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with pre-ping (survives a database restart); SQLite made multi-process safe."""
    parsed = make_url(sqlalchemy_url(url))
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, pool_pre_ping=True, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Beat, the worker and its children all write: WAL lets readers go on during a write,
    # and busy_timeout makes a writer wait for the lock instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
