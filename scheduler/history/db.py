"""Engines for the history database, the same on every dialect we support."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Insert, Table, create_engine, event
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import make_url

from scheduler.config import sqlalchemy_url

__all__ = ["make_engine", "sqlalchemy_url"]


def make_engine(url: str, *, per_statement: bool = False, **kwargs: Any) -> Engine:
    """An engine with pre-ping (survives a database restart); SQLite made multi-process safe.

    `per_statement=True` is for the worker's history writes, a few single-statement writes
    per task where round trips are most of the cost: autocommit (no BEGIN/COMMIT round
    trips; each statement is a compare-and-set that needs no transaction around it), no
    pre-ping (a write that fails on a stale connection is retried by the WriteBuffer), and
    on PostgreSQL commits acknowledged before their WAL reaches the disk (synchronous_commit
    off: a database crash can lose the last fraction of a second of commits, never corrupt
    or half-apply one). Beat claims never use it: exactly-once rests on them.
    """
    parsed = make_url(sqlalchemy_url(url))
    if per_statement:
        kwargs.setdefault("isolation_level", "AUTOCOMMIT")
        if parsed.get_backend_name() == "postgresql":
            kwargs.setdefault("connect_args", {})["options"] = "-c synchronous_commit=off"
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, pool_pre_ping=not per_statement, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Beat, the worker and its children all write: WAL lets readers go on during a write,
    # and busy_timeout makes a writer wait for the lock instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    try:
        cursor.execute("SELECT ln(2.0), floor(2.5)")
    except sqlite3.OperationalError:
        # SQLite built without its math functions: `stats` buckets durations with these.
        dbapi_connection.create_function("ln", 1, math.log, deterministic=True)
        dbapi_connection.create_function("floor", 1, math.floor, deterministic=True)
    cursor.close()


def insert_ignore(conn: Connection, table: Table) -> Insert:
    """INSERT that skips a row whose key exists, in the connection's dialect."""
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    return mysql.insert(table).prefix_with("IGNORE")
