"""`result.get()` reads the run history: each Celery state from the run's status."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from celery import Celery, states
from celery.exceptions import TimeLimitExceeded

from scheduler.celery_app import create_app
from scheduler.config import Settings
from scheduler.history.db import make_engine
from scheduler.history.models import RunStatus, Trigger
from scheduler.history.schema import upgrade
from scheduler.history.store import HistoryStore, NewRun

T0 = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)


@pytest.fixture
def app_and_store(database_url: str, tmp_path: Path) -> Iterator[tuple[Celery, HistoryStore]]:
    engine = make_engine(database_url)
    upgrade(engine)
    app = create_app(
        Settings.from_env(
            {
                "SCHEDULER_DATABASE_URL": database_url,
                "SCHEDULER_BROKER_URL": f"sqla+sqlite:///{tmp_path}/broker.sqlite",
            }
        )
    )
    yield app, HistoryStore(engine)
    app.close()
    engine.dispose()


def _run(store: HistoryStore, run_id: str, status: RunStatus, **fields: object) -> None:
    store.claim(
        NewRun(
            id=run_id,
            job_name="j",
            task_name="jobs.demo.noop",
            trigger=Trigger.MANUAL,
            status=RunStatus.QUEUED,
        ),
        T0,
    )
    if status is RunStatus.QUEUED:
        return
    store.record_started(run_id, job_name="j", task_name="jobs.demo.noop", worker="w", at=T0)
    if status is not RunStatus.RUNNING:
        store.record_finished(run_id, status, T0, **fields)  # type: ignore[arg-type]


def test_each_run_status_is_a_celery_state(app_and_store: tuple[Celery, HistoryStore]) -> None:
    app, store = app_and_store
    assert app.backend.__class__.__name__ == "HistoryBackend"
    _run(store, "ok", RunStatus.SUCCEEDED, result={"rows": [1, 2]})
    _run(store, "bad", RunStatus.FAILED, error_type="ValueError", error_message="no rows")
    _run(store, "own", RunStatus.FAILED, error_type="ReportError", error_message="odd")
    _run(store, "slow", RunStatus.TIMED_OUT, error_type="TimeLimitExceeded", error_message="9")
    _run(store, "busy", RunStatus.RUNNING)
    _run(store, "waiting", RunStatus.QUEUED)

    ok = app.AsyncResult("ok")
    assert (ok.state, ok.get(timeout=5)) == (states.SUCCESS, {"rows": [1, 2]})
    with pytest.raises(ValueError, match="no rows"):
        app.AsyncResult("bad").get(timeout=5)
    own = app.AsyncResult("own")
    assert own.state == states.FAILURE
    assert type(own.result).__name__ == "ReportError" and str(own.result) == "odd"
    with pytest.raises(TimeLimitExceeded):
        app.AsyncResult("slow").get(timeout=5)
    assert app.AsyncResult("busy").state == states.STARTED
    assert app.AsyncResult("waiting").state == states.PENDING
    assert app.AsyncResult("never-heard-of").state == states.PENDING


def test_celery_storing_each_result_costs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Celery stores every task's outcome through the backend, in the task's process; the
    recorder has already written it into the run's row, so nothing is encoded or written."""
    app = create_app(
        Settings.from_env(
            {
                "SCHEDULER_DATABASE_URL": f"sqlite:///{tmp_path}/history.sqlite",
                "SCHEDULER_BROKER_URL": f"sqla+sqlite:///{tmp_path}/broker.sqlite",
            }
        )
    )
    backend = app.backend

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("the backend worked on a result that the history already has")

    monkeypatch.setattr(backend, "encode_result", refuse)
    monkeypatch.setattr(backend, "_store_result", refuse)
    backend.mark_as_done("run-1", {"rows": 3})
    backend.mark_as_started("run-2", pid=1)
    backend.store_result("run-3", ValueError("bad"), states.FAILURE)
    assert backend._engine is None  # not even connected
    app.close()
