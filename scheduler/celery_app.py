"""The Celery app, built once from Settings (SPEC §2)."""

from __future__ import annotations

import importlib
import pkgutil

from celery import Celery

from scheduler.config import HISTORY_BACKEND, Settings, sqlalchemy_url
from scheduler.history.recording import Recorder
from scheduler.schedule_file import read_timezone


def job_modules() -> list[str]:
    """Every module of the `jobs` package: adding a file there is all it takes."""
    import jobs

    return sorted(
        f"jobs.{info.name}"
        for info in pkgutil.iter_modules(jobs.__path__)
        if not info.name.startswith("_")
    )


def create_app(settings: Settings) -> Celery:
    """A Celery app with the settings every deployment of the scheduler has."""
    app = Celery("scheduler", set_as_current=True, task_cls="scheduler.jobtask:JobTask")
    app.conf.update(
        broker_url=settings.broker_url,
        result_backend=_result_backend(settings.result_backend),
        scheduler_database_url=settings.database_url,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        enable_utc=True,
        # SPEC §2: the schedule file's timezone (all times are UTC inside, enable_utc).
        timezone=read_timezone(settings.schedule_file, settings.max_schedule_bytes)
        or settings.timezone,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_send_task_events=True,
        task_send_sent_event=True,
        include=job_modules(),
        broker_connection_retry_on_startup=True,
        # Never give up on the broker: a worker or beat that exits after 100 failed
        # reconnects during a long broker outage would need a supervisor to come back.
        broker_connection_max_retries=None,
        beat_scheduler="scheduler.beat:Beat",
        # Beat sends with explicit expiry; results are kept a day for `result.get()`.
        result_expires=86400,
    )
    # The embedded SQLite broker and result backend are written by beat, the worker and its
    # children at once; without a busy timeout SQLite fails at once with "database is
    # locked" (a retry that cannot be re-published is then rejected and lost).
    if settings.broker_url.startswith("sqla+sqlite"):
        app.conf.broker_transport_options = {"connect_args": {"timeout": 30}}
    if app.conf.result_backend.startswith("db+sqlite"):
        app.conf.database_engine_options = {"connect_args": {"timeout": 30}}
    return app


def _result_backend(url: str) -> str:
    if url == HISTORY_BACKEND:
        return "scheduler.history.backend:HistoryBackend"
    # `db+postgresql://` would pick psycopg2, which we do not install; name our drivers.
    return "db+" + sqlalchemy_url(url[3:]) if url.startswith("db+") else url


def is_job_task(name: str) -> bool:
    """Runs of tasks from the jobs package are recorded; Celery's own tasks are not."""
    return name.startswith("jobs.")


def registered_tasks(app: Celery) -> frozenset[str]:
    """Names of the tasks defined in the jobs package (Celery's own `celery.*` excluded)."""
    for module in app.conf.include:
        importlib.import_module(module)
    return frozenset(name for name in app.tasks if is_job_task(name))


settings = Settings.from_env()
app = create_app(settings)
Recorder(settings.database_url, is_job_task).connect()
