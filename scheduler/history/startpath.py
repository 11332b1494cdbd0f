"""The cheap way to write a run's start, the one history write a worker's task waits for.

`HistoryStore.record_started` runs before every task and its answer decides whether the task
runs at all, so its CPU is on every task's critical path. Two things make it cheaper than a
plain `engine.begin()` and a Core statement, without giving the connection to anyone but
SQLAlchemy:

- `HeldConnection`: the store keeps one Connection checked out for it instead of taking one
  from the pool per run (the checkout, reset and transaction bookkeeping cost as much CPU
  as the statement). Only for an autocommit engine, where holding a connection holds no
  transaction open; a connection that has failed once is closed and a new one taken.
- On PostgreSQL the two statements of the common case (a new run's INSERT, a queued run's
  UPDATE) are sent as plain SQL through that Connection (`exec_driver_sql`): SQLAlchemy's
  statement cache lookup and bind processing cost more CPU than the database spends on
  them, while its error handling (wrapping, invalidating a dead connection) stays.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine

from scheduler.history.statuses import RunStatus, Trigger

_STARTABLE = ", ".join(f"'{s}'" for s in (RunStatus.QUEUED, RunStatus.RETRYING, RunStatus.LOST))

# The same as store._insert_started and store._START (the tests run both on PostgreSQL).
PG_INSERT_STARTED = (
    "INSERT INTO runs (id, job_name, task_name, trigger, status, created_at, enqueued_at, "
    "started_at, attempts, worker, worker_process, queue, args, kwargs, deadline_at) "
    f"VALUES (%(id)s, %(job_name)s, %(task_name)s, '{Trigger.API.value}', "
    f"'{RunStatus.RUNNING.value}', %(at)s, %(at)s, %(at)s, 1, %(worker)s, %(worker_process)s, "
    "%(queue)s, %(args)s::json, %(kwargs)s::json, %(deadline_at)s) "
    "ON CONFLICT DO NOTHING"
)
PG_START = (
    f"UPDATE runs SET status = '{RunStatus.RUNNING.value}', started_at = %(at)s, "
    "worker = %(worker)s, worker_process = %(worker_process)s, attempts = runs.attempts + 1, "
    "deadline_at = %(deadline_at)s, enqueued_at = coalesce(runs.enqueued_at, %(at)s), "
    f"finished_at = NULL WHERE runs.id = %(id)s AND runs.status IN ({_STARTABLE})"
)


def _utc(value: datetime | None) -> datetime | None:
    # As models.UTCDateTime does for Core statements.
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r} refused: history times are aware UTC")
    return value.astimezone(UTC)


def pg_insert_started(conn: Connection, row: Mapping[str, Any]) -> bool:
    """store._insert_started on PostgreSQL: True if the row was new and is now inserted."""
    params = {
        "id": row["id"],
        "job_name": row["job_name"],
        "task_name": row["task_name"],
        "at": _utc(row["started_at"]),
        "worker": row["worker"],
        "worker_process": row["worker_process"],
        "queue": row["queue"],
        "args": json.dumps(row["args"]),
        "kwargs": json.dumps(row["kwargs"]),
        "deadline_at": _utc(row["deadline_at"]),
    }
    # No RETURNING: for one statement psycopg's rowcount is exact ("INSERT 0 1"), and a
    # result without rows costs SQLAlchemy no result metadata.
    return conn.exec_driver_sql(PG_INSERT_STARTED, params).rowcount == 1


def pg_start(conn: Connection, start: Mapping[str, Any]) -> bool:
    """store._START on PostgreSQL: True if a queued, retrying or lost run is now running."""
    params = {
        "id": start["run_id"],
        "at": _utc(start["started_at"]),
        "worker": start["worker"],
        "worker_process": start["worker_process"],
        "deadline_at": _utc(start["deadline_at"]),
    }
    return bool(conn.exec_driver_sql(PG_START, params).rowcount)


class HeldConnection:
    """One Connection of an autocommit engine, kept checked out for the start writes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None
        # The worker's main thread is the one user; a write retried by the WriteBuffer's
        # thread during an outage takes a pooled connection instead of waiting.
        self._lock = threading.Lock()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        if not self._lock.acquire(blocking=False):
            with self.engine.begin() as conn:
                yield conn
            return
        try:
            if self._conn is None:
                self._conn = self.engine.connect()
            try:
                yield self._conn
                # Autocommit: the database has committed each statement; this ends
                # SQLAlchemy's own record of the transaction it began.
                self._conn.commit()
            except BaseException:
                # Whatever failed (the database went away, a statement was refused), the
                # next write starts from a fresh connection, not from this one's state.
                conn, self._conn = self._conn, None
                conn.invalidate()
                conn.close()
                raise
        finally:
            self._lock.release()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
