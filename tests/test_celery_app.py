from __future__ import annotations

import sys
from pathlib import Path

import pytest

import jobs
from scheduler.celery_app import create_app, job_modules, registered_tasks
from scheduler.config import Settings


def test_app_has_the_settings_of_spec_section_2() -> None:
    app = create_app(Settings.from_env({"SCHEDULER_BROKER_URL": "redis://127.0.0.1:1/0"}))
    conf = app.conf
    assert conf.task_serializer == "json"
    assert conf.result_serializer == "json"
    assert list(conf.accept_content) == ["json"]
    assert conf.enable_utc is True
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.worker_send_task_events is True
    assert conf.broker_url == "redis://127.0.0.1:1/0"
    assert conf.result_backend == "scheduler.history.backend:HistoryBackend"
    assert conf.scheduler_database_url == "sqlite:///var/history.sqlite"


def test_celery_dash_a_scheduler_finds_the_app() -> None:
    from celery import Celery

    import scheduler

    assert isinstance(scheduler.app, Celery)
    assert scheduler.celery is scheduler.app


def test_shipped_jobs_are_registered() -> None:
    app = create_app(Settings.from_env({}))
    assert {
        "jobs.health.ping",
        "jobs.reports.build_report",
        "jobs.notify.announce",
        "jobs.demo.fail",
        "jobs.demo.slow",
        "jobs.demo.noop",
    } <= registered_tasks(app)
    assert not any(name.startswith("celery.") for name in registered_tasks(app))


def test_a_new_file_in_jobs_is_all_it_takes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "extra_for_test.py").write_text(
        "from celery import shared_task\n\n"
        "@shared_task(name='jobs.extra_for_test.hello')\n"
        "def hello() -> str:\n    return 'hi'\n"
    )
    monkeypatch.setattr(jobs, "__path__", [*jobs.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "jobs.extra_for_test", raising=False)
    assert "jobs.extra_for_test" in job_modules()
    app = create_app(Settings.from_env({}))
    assert "jobs.extra_for_test.hello" in registered_tasks(app)
    sys.modules.pop("jobs.extra_for_test", None)


def test_app_timezone_comes_from_the_schedule_file(tmp_path: Path) -> None:
    schedule = tmp_path / "s.yaml"
    schedule.write_text("timezone: Europe/Dublin\njobs: {}\n")
    settings = Settings.from_env({"SCHEDULER_SCHEDULE_FILE": str(schedule)})
    assert create_app(settings).conf.timezone == "Europe/Dublin"
    schedule.write_text("timezone: Mars/Olympus\njobs: {}\n")  # invalid: the env default
    assert create_app(settings).conf.timezone == "UTC"
