"""The worker's writes in plain SQL (scheduler/history/startpath.py): same rows as the Core
statements, and a held connection that the database dropped is replaced, not reused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from scheduler.history.buffer import unavailable
from scheduler.history.db import make_engine
from scheduler.history.models import RunStatus, Trigger
from scheduler.history.schema import upgrade
from scheduler.history.store import RESULT_LIMIT, HistoryStore, NewRun
from tests.services import database

T0 = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)


@pytest.fixture
def worker_store(database_url: str) -> Iterator[HistoryStore]:
    """A store as a worker's recorder makes it: autocommit engine, held start connection."""
    migrating = make_engine(database_url)
    upgrade(migrating)
    migrating.dispose()
    engine = make_engine(database_url, per_statement=True)
    yield HistoryStore(engine, hold_start_connection=True)
    engine.dispose()


def test_a_run_first_heard_of_at_its_start_gets_every_field(worker_store: HistoryStore) -> None:
    at = T0 + timedelta(seconds=1)
    assert worker_store.record_started(
        "new",
        job_name="jobs.x",
        task_name="jobs.x",
        worker="celery@a",
        worker_process="celery@a:1",
        at=at,
        args=[1, "two"],
        kwargs={"token": "s3cret", "n": 3},
        queue="q1",
        deadline_at=at + timedelta(seconds=30),
        known=False,
    )
    run = worker_store.get("new")
    assert run is not None
    assert (run.job_name, run.task_name, run.trigger, run.status, run.attempts) == (
        "jobs.x",
        "jobs.x",
        Trigger.API,
        RunStatus.RUNNING,
        1,
    )
    assert (run.created_at, run.enqueued_at, run.started_at, run.finished_at) == (at, at, at, None)
    assert (run.worker, run.worker_process, run.queue) == ("celery@a", "celery@a:1", "q1")
    assert (run.args, run.kwargs) == ([1, "two"], {"token": "***", "n": 3})
    assert run.deadline_at == at + timedelta(seconds=30)
    # A second copy of the same message finds it running on a live process: not run again.
    worker_store.heartbeat("celery@a:1", "worker", "a", 1, at)
    again = {"job_name": "jobs.x", "task_name": "jobs.x", "worker": "celery@b", "at": at}
    assert not worker_store.record_started("new", worker_process="celery@b:2", **again)  # type: ignore[arg-type]


def test_a_queued_run_starts_with_its_enqueue_time_kept(worker_store: HistoryStore) -> None:
    for run_id, enqueued in (("sent", T0), ("claimed-only", None)):
        run = NewRun(run_id, "job", "jobs.x", Trigger.SCHEDULE, RunStatus.QUEUED, tick_at=T0)
        worker_store.claim(run, T0)
        if enqueued:
            worker_store.mark_enqueued(run_id, enqueued)
        at = T0 + timedelta(seconds=2)
        assert worker_store.record_started(
            run_id, job_name="job", task_name="jobs.x", worker="w", worker_process="w:1", at=at
        )
        started = worker_store.get(run_id)
        assert started is not None
        assert (started.status, started.attempts, started.worker_process) == (
            RunStatus.RUNNING,
            1,
            "w:1",
        )
        assert (started.enqueued_at, started.started_at) == (enqueued or at, at)
    # A finished run is not started again.
    worker_store.record_finished("sent", RunStatus.SUCCEEDED, T0 + timedelta(seconds=3))
    assert not worker_store.record_started(
        "sent", job_name="job", task_name="jobs.x", worker="w", at=T0 + timedelta(seconds=4)
    )


def test_a_held_connection_the_database_dropped_is_replaced(tmp_path: Path) -> None:
    with database("postgresql", tmp_path) as url:
        migrating = make_engine(url)
        upgrade(migrating)
        migrating.dispose()
        engine = make_engine(url, per_statement=True)
        store = HistoryStore(engine, hold_start_connection=True)
        kw = {"job_name": "j", "task_name": "jobs.x", "worker": "w", "at": T0, "known": False}
        assert store.record_started("one", **kw)  # type: ignore[arg-type]
        with engine.connect() as conn:
            (held,) = conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid()"
                )
            ).scalars()
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": held})
        # The write that finds it dead fails as a database outage (the WriteBuffer keeps it)...
        with pytest.raises(Exception) as failed:
            store.record_started("two", **kw)  # type: ignore[arg-type]
        assert unavailable(failed.value)
        # ... and the next one gets a new connection.
        assert store.record_started("two", **kw)  # type: ignore[arg-type]
        assert store.get("two") is not None
        engine.dispose()


def _statements_through_sqlalchemy(engine: Engine) -> list[str]:
    """Statements SQLAlchemy executes on this engine from now on (plain SQL is not seen)."""
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    return seen


def _outcomes(ids: list[str], started: datetime) -> list[dict[str, Any]]:
    return [
        {
            "run_id": ids[0],
            "status": RunStatus.SUCCEEDED,
            "at": started + timedelta(seconds=2),
            "started_at": started,
            "result": {"rows": [1, 2], "note": "é"},
        },
        {
            "run_id": ids[1],
            "status": RunStatus.SUCCEEDED,
            "at": started + timedelta(seconds=1),
            "started_at": started,
            "result": "x" * (RESULT_LIMIT * 2),
        },
        {
            "run_id": ids[2],
            "status": RunStatus.FAILED,
            "at": started + timedelta(seconds=4),
            "started_at": started,
            "error_type": "ValueError",
            "error_message": "bad",
            "traceback": "Traceback ...",
        },
        {"run_id": ids[3], "status": RunStatus.SUCCEEDED, "at": started, "started_at": started},
    ]


def test_outcomes_in_plain_sql_write_what_the_core_statement_writes(
    worker_store: HistoryStore, database_url: str
) -> None:
    core = HistoryStore(make_engine(database_url))  # no held connection: the Core statement
    started = T0 + timedelta(seconds=1)
    written: dict[str, list[Any]] = {}
    for store, prefix in ((worker_store, "plain"), (core, "core")):
        ids = [f"{prefix}-{n}" for n in range(4)]
        for run_id in ids:
            kw = {"job_name": "j", "task_name": "jobs.x", "worker": "w", "known": False}
            assert store.record_started(run_id, at=started, **kw)  # type: ignore[arg-type]
        through_sqlalchemy = _statements_through_sqlalchemy(store.engine)
        store.record_finished_many(_outcomes(ids, started))
        if store is worker_store and worker_store.engine.dialect.name == "postgresql":
            assert through_sqlalchemy == []  # one plain executemany on the held connection
        written[prefix] = [store.get(run_id) for run_id in ids]
    fields = ("status", "started_at", "finished_at", "duration_s", "result", "error_type")
    for plain, by_core in zip(written["plain"], written["core"], strict=True):
        assert plain is not None and by_core is not None
        assert [getattr(plain, f) for f in fields] == [getattr(by_core, f) for f in fields]
        assert (plain.error_message, plain.traceback) == (by_core.error_message, by_core.traceback)
    assert written["plain"][0].result == {"rows": [1, 2], "note": "é"}  # type: ignore[union-attr]
    assert written["plain"][1].result["truncated"] is True  # type: ignore[union-attr]
    assert written["plain"][2].duration_s == 4.0  # type: ignore[union-attr]
    core.engine.dispose()


def test_a_start_waits_for_no_connection_another_thread_holds(worker_store: HistoryStore) -> None:
    """While the WriteBuffer's thread has the held connection (a retried write), a start
    takes a pooled one and decides just the same."""
    kw = {"job_name": "j", "task_name": "jobs.x", "worker": "w", "worker_process": "w:1"}
    held = worker_store._held
    assert held is not None
    with held.begin():
        assert worker_store.record_started("busy", at=T0, known=False, **kw)  # type: ignore[arg-type]
        worker_store.heartbeat("w:1", "worker", "w", 1, T0)
        assert not worker_store.record_started("busy", at=T0, known=False, **kw)  # type: ignore[arg-type]
    run = worker_store.get("busy")
    assert run is not None and (run.status, run.attempts) == (RunStatus.RUNNING, 1)


def test_a_dropped_outcome_connection_is_an_outage_then_replaced(tmp_path: Path) -> None:
    with database("postgresql", tmp_path) as url:
        migrating = make_engine(url)
        upgrade(migrating)
        migrating.dispose()
        engine = make_engine(url, per_statement=True)
        store = HistoryStore(engine, hold_start_connection=True)
        kw = {"job_name": "j", "task_name": "jobs.x", "worker": "w", "known": False}
        for run_id in ("one", "two"):
            assert store.record_started(run_id, at=T0, **kw)  # type: ignore[arg-type]
        done = {"status": RunStatus.SUCCEEDED, "at": T0, "started_at": T0}
        store.record_finished_many([{"run_id": "one", **done}])
        with engine.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        # The batch that finds its connection dead fails as a database outage (the
        # WriteBuffer keeps it and tries again)...
        with pytest.raises(Exception) as failed:
            store.record_finished_many([{"run_id": "two", **done}])
        assert unavailable(failed.value)
        # ... and the retry gets a new connection.
        store.record_finished_many([{"run_id": "two", **done}])
        run = store.get("two")
        assert run is not None and run.status is RunStatus.SUCCEEDED
        engine.dispose()
