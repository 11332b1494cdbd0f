"""The cheap way to write a run's start and outcome: the history writes of every worker task.

`HistoryStore.record_started` runs before every task and its answer decides whether the task
runs at all, so its CPU is on every task's critical path; the outcomes written in the
background share the same process (and the GIL) with the next tasks. On PostgreSQL both are
sent as plain SQL on the DBAPI cursor of a Connection that the store keeps checked out
(`HeldConnection`): the pool checkout, SQLAlchemy's execution context, statement cache
lookup, bind processing and result object cost more CPU than the database spends on these
statements. Only for an autocommit engine, where holding a connection holds no transaction
open. Errors are raised as SQLAlchemy raises them (`DBAPIError` subclasses: the
WriteBuffer tells an outage from a refused statement by them), and a connection that has
failed once is closed and a new one taken.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from scheduler.history.statuses import FINAL_STATUSES, RunStatus, Trigger

_STARTABLE = ", ".join(f"'{s}'" for s in (RunStatus.QUEUED, RunStatus.RETRYING, RunStatus.LOST))
RESULT_LIMIT = 64 * 1024  # bytes of JSON kept per result; a huge return value is cut

# The same as store._insert_started, store._START and store._FINISH (the tests run both on
# PostgreSQL).
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
PG_FINISH = (
    "UPDATE runs SET status = %s, finished_at = %s, error_type = %s, error_message = %s, "
    "traceback = %s, duration_s = %s, result = %s::json WHERE runs.id = %s"
)


def capped_json(value: Any) -> str:
    """The value's JSON if it fits in RESULT_LIMIT, else that of a marker with a preview."""
    try:
        text = json.dumps(value, default=repr)
    except (TypeError, ValueError):
        text = json.dumps(repr(value))
    if len(text) <= RESULT_LIMIT:
        return text
    return json.dumps({"truncated": True, "bytes": len(text), "preview": text[:1000]})


def clean_text(value: str | None) -> str | None:
    """The text with each NUL character replaced: PostgreSQL refuses NUL in text columns,
    and an exception message can hold one."""
    return value.replace("\x00", "\ufffd") if value and "\x00" in value else value


def _utc(value: datetime | None) -> datetime | None:
    # As models.UTCDateTime does for Core statements.
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r} refused: history times are aware UTC")
    return value.astimezone(UTC)


def pg_start_params(
    run_id: str,
    *,
    job_name: str,
    task_name: str,
    at: datetime,
    worker: str | None,
    worker_process: str | None,
    queue: str | None,
    args: Any,
    kwargs: Any,
    deadline_at: datetime | None,
) -> dict[str, Any]:
    """The parameters of PG_INSERT_STARTED and PG_START (args and kwargs already redacted)."""
    return {
        "id": run_id,
        "job_name": job_name,
        "task_name": task_name,
        "at": _utc(at),
        "worker": worker,
        "worker_process": worker_process,
        "queue": queue,
        "args": json.dumps(args) if args else "[]",
        "kwargs": json.dumps(kwargs) if kwargs else "{}",
        "deadline_at": _utc(deadline_at),
    }


def pg_try_start(held: HeldConnection, params: Mapping[str, Any], *, known: bool) -> bool | None:
    """The common case of record_started: True if the run is now running (a new row, or a
    queued, retrying or lost one taken); False if the row must be read to decide; None if
    the held connection is in use by another thread (do it all the usual way)."""
    # No RETURNING: for one statement psycopg's rowcount is exact ("INSERT 0 1"), and a
    # result without rows needs no fetch.
    if not known:
        inserted = held.execute(PG_INSERT_STARTED, params)
        if inserted is None or inserted == 1:
            return None if inserted is None else True
    started = held.execute(PG_START, params)
    return None if started is None else started > 0


def pg_finish_row(
    run_id: str,
    status: RunStatus,
    at: datetime,
    *,
    result: Any = None,
    error_type: str | None = None,
    error_message: str | None = None,
    traceback: str | None = None,
    started_at: datetime | None = None,
) -> tuple[Any, ...]:
    """The parameters of PG_FINISH, as store._finish_params gives them to store._FINISH."""
    final = status in FINAL_STATUSES
    return (
        status.value,
        _utc(at) if final else None,
        clean_text(error_type),
        clean_text(error_message),
        clean_text(traceback),
        (at - started_at).total_seconds() if final and started_at else None,
        # JSON null, as SQLAlchemy's JSON type writes None.
        capped_json(result) if status is RunStatus.SUCCEEDED else "null",
        run_id,
    )


class HeldConnection:
    """One Connection of an autocommit engine, kept checked out for the worker's writes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None
        self._cursor: Any = None  # the DBAPI cursor of _conn, for plain SQL
        # Each HeldConnection has one user thread; a write retried by the WriteBuffer's
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
                self._drop()
                raise
        finally:
            self._lock.release()

    def execute(self, sql: str, params: Any) -> int | None:
        """Run one plain SQL statement; its rowcount, or None if the connection is in use."""
        return self._run(sql, params, many=False)

    def executemany(self, sql: str, rows: Sequence[Any]) -> int | None:
        """Run a plain SQL statement for each row, in one round trip; None if in use."""
        return self._run(sql, rows, many=True)

    def _run(self, sql: str, params: Any, *, many: bool) -> int | None:
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if self._conn is None:
                self._conn = self.engine.connect()  # fails as SQLAlchemy errors already
            dbapi_conn = self._conn.connection.dbapi_connection
            try:
                if self._cursor is None:
                    self._cursor = dbapi_conn.cursor()  # type: ignore[union-attr]
                if many:
                    self._cursor.executemany(sql, params)
                else:
                    self._cursor.execute(sql, params)
                return int(self._cursor.rowcount)
            except BaseException as exc:
                self._drop()
                dialect = self.engine.dialect
                dbapi_error = dialect.loaded_dbapi.Error
                if not isinstance(exc, dbapi_error):
                    raise
                raise DBAPIError.instance(
                    sql,
                    params,
                    exc,
                    dbapi_error,
                    connection_invalidated=dialect.is_disconnect(exc, dbapi_conn, None),
                    dialect=dialect,
                    ismulti=many,
                ) from exc
        finally:
            self._lock.release()

    def _drop(self) -> None:
        conn, self._conn, self._cursor = self._conn, None, None
        if conn is not None:
            conn.invalidate()
            conn.close()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn, self._cursor = None, None
