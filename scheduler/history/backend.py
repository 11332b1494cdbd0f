"""A Celery result backend that reads results from the run history: `result.get()` works and
each result is written once, by the recorder, into the run's row.

Celery's `db+` backend writes every result a second time, into its own table, in its own
transaction: with the history that is three database writes per task, and the worker's
throughput halves. Here storing is a no-op (the recorder has recorded the outcome from
Celery's signals, in the same process, before Celery would store it) and reading maps the
run's status onto Celery's states. A result is the history's: JSON, capped in size
(`store.RESULT_LIMIT`). Group results (`GroupResult.save`) are not kept; set
SCHEDULER_RESULT_BACKEND to another backend for those.
"""

from __future__ import annotations

import builtins
import os
from typing import Any

import celery.exceptions
from celery import states
from celery.backends.base import BaseBackend
from sqlalchemy import Engine, select

from scheduler.history.db import make_engine
from scheduler.history.models import RunStatus
from scheduler.history.store import RUNS

_STATE = {
    RunStatus.SUCCEEDED: states.SUCCESS,
    RunStatus.FAILED: states.FAILURE,
    RunStatus.TIMED_OUT: states.FAILURE,
    RunStatus.LOST: states.FAILURE,
    RunStatus.RETRYING: states.RETRY,
    RunStatus.RUNNING: states.STARTED,
    RunStatus.REVOKED: states.REVOKED,
}
_DEFAULT_ERROR = {
    RunStatus.TIMED_OUT: "TimeLimitExceeded",
    RunStatus.LOST: "WorkerLostError",
    RunStatus.REVOKED: "TaskRevokedError",
}


class HistoryBackend(BaseBackend):  # type: ignore[misc]
    """`result_backend = "scheduler.history.backend:HistoryBackend"`."""

    persistent = True

    def __init__(self, app: Any = None, url: str | None = None, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.database_url: str = url or app.conf.scheduler_database_url
        self._engine: Engine | None = None
        self._pid = 0

    @property
    def engine(self) -> Engine:
        # One engine per process: a pool child must not share its parent's connections.
        if self._engine is None or self._pid != os.getpid():
            self._engine = make_engine(self.database_url)
            self._pid = os.getpid()
        return self._engine

    def store_result(self, task_id: str, result: Any, state: str, *_: Any, **__: Any) -> Any:
        # Already in the run's row (scheduler.history.recording): BaseBackend.store_result
        # would first encode the result, on every task, for a write that does nothing.
        return result

    def _store_result(self, task_id: str, result: Any, state: str, *_: Any, **__: Any) -> Any:
        return result

    def _get_task_meta_for(self, task_id: str) -> dict[str, Any]:
        query = select(
            RUNS.c.status,
            RUNS.c.result,
            RUNS.c.error_type,
            RUNS.c.error_message,
            RUNS.c.traceback,
            RUNS.c.finished_at,
        ).where(RUNS.c.id == task_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        status = RunStatus(row.status) if row is not None else RunStatus.QUEUED
        state = _STATE.get(status, states.PENDING)
        meta: dict[str, Any] = {"task_id": task_id, "status": state, "result": None}
        if row is None:
            return meta
        meta["traceback"] = row.traceback
        meta["date_done"] = row.finished_at
        if state == states.SUCCESS:
            meta["result"] = row.result
        elif state in states.EXCEPTION_STATES:
            name = row.error_type or _DEFAULT_ERROR.get(status, "RuntimeError")
            meta["result"] = self.exception_to_python(
                {
                    "exc_type": name,
                    "exc_message": [row.error_message or status.value],
                    "exc_module": _module_of(name),
                }
            )
        return meta

    def _forget(self, task_id: str) -> None:
        pass  # a run stays in the history until retention purges it

    def _save_group(self, group_id: str, result: Any) -> Any:
        raise NotImplementedError(
            "the history result backend keeps no groups: set SCHEDULER_RESULT_BACKEND"
        )

    def _restore_group(self, group_id: str) -> Any:
        return None

    def _delete_group(self, group_id: str) -> None:
        pass

    def cleanup(self) -> None:
        pass  # retention (history.keep) purges old runs


def _module_of(name: str) -> str | None:
    """Where an exception class of this name lives, if it is a well-known one."""
    for module in (builtins, celery.exceptions):
        found = getattr(module, name, None)
        if isinstance(found, type) and issubclass(found, BaseException):
            return module.__name__
    return None  # Celery makes a stand-in class of that name
