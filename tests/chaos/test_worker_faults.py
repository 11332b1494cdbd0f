"""Faults with real processes: workers killed mid-run, beats that died after claiming,
duplicate messages. Each scenario kills only the processes it started, by process group,
and asserts on the history table."""

from __future__ import annotations

import os
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.history.db import make_engine
from scheduler.history.models import RunStatus, Trigger
from scheduler.history.store import HistoryStore, NewRun, run_id_for
from tests.e2e.harness import System, system, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.chaos]

SCHEDULE = """\
jobs:
  slowjob:
    task: jobs.demo.slow
    at: 2099-01-01T00:00
    kwargs: {seconds: 6}
  report:
    task: jobs.reports.build_report
    at: 2099-01-01T00:00
    args: [chaos]
"""


def _run(s: System, run_id: str) -> dict[str, object] | None:
    return next((r for r in s.history() if r["id"] == run_id), None)


def _status(s: System, run_id: str, *statuses: str) -> dict[str, object] | None:
    row = _run(s, run_id)
    return row if row is not None and row["status"] in statuses else None


def _trigger(s: System, job: str) -> str:
    result = s.cli("trigger", job)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@pytest.mark.parametrize("broker_kind", ["redis", "amqp"])
def test_pool_child_killed_mid_run_is_redelivered_and_run_again(
    broker_kind: str, tmp_path: Path
) -> None:
    with system(broker_kind, "postgresql", tmp_path) as s:
        s.write_schedule(SCHEDULE)
        worker = s.worker(concurrency=1)
        wait_for(lambda: "ready" in s.logs(), 60, "the worker", s)
        run_id = _trigger(s, "slowjob")
        wait_for(lambda: _status(s, run_id, "running"), 30, "the run to start", s)
        for child in _children(worker.pid):
            os.kill(child, signal.SIGKILL)
        # task_reject_on_worker_lost puts the message back; the redelivery runs it again.
        row = wait_for(lambda: _status(s, run_id, "succeeded"), 60, "the run to succeed", s)
        assert row["attempts"] == 2
        assert row["trigger"] == "manual"


def test_worker_killed_whole_is_reaped_as_lost(tmp_path: Path) -> None:
    with system("redis", "postgresql", tmp_path) as s:
        s.env["SCHEDULER_WORKER_TIMEOUT"] = "3"
        s.write_schedule(SCHEDULE)
        worker = s.worker(concurrency=1)
        s.beat()
        wait_for(lambda: "ready" in s.logs(), 60, "the worker", s)
        run_id = _trigger(s, "slowjob")
        wait_for(lambda: _status(s, run_id, "running"), 30, "the run to start", s)
        s.stop(worker, signal.SIGKILL)
        # Redis would redeliver only after its visibility timeout (an hour): the beat's
        # reaper sees the worker's heartbeats stop and ends the run as lost.
        row = wait_for(lambda: _status(s, run_id, "lost"), 60, "the reaper", s)
        assert row["error_type"] == "WorkerLost"
        assert row["finished_at"]
        assert not [r for r in s.history() if r["status"] == "running"]


def _report_tick() -> NewRun:
    """The run of the `report` job's tick at 2026-01-01, as a beat claims it."""
    tick_at = datetime(2026, 1, 1, tzinfo=UTC)
    return NewRun(
        run_id_for("report", tick_at),
        "report",
        "jobs.reports.build_report",
        Trigger.SCHEDULE,
        RunStatus.QUEUED,
        tick_at=tick_at,
    )


def test_a_claim_whose_beat_died_before_publishing_is_sent_by_a_beat(tmp_path: Path) -> None:
    with system("redis", "postgresql", tmp_path) as s:
        s.write_schedule(SCHEDULE)
        store = HistoryStore(make_engine(s.env["SCHEDULER_DATABASE_URL"]))
        orphan = _report_tick()
        # Claimed a minute ago by a beat that died before publishing: no enqueued_at.
        assert store.claim(orphan, datetime.now(UTC) - timedelta(minutes=1))
        s.worker()
        s.beat()
        row = wait_for(lambda: _status(s, orphan.id, "succeeded"), 60, "the orphan to run", s)
        assert row["attempts"] == 1 and row["enqueued_at"]
        store.engine.dispose()


def test_a_duplicate_message_runs_the_job_once(tmp_path: Path) -> None:
    with system("redis", "postgresql", tmp_path) as s:
        s.write_schedule(SCHEDULE)
        store = HistoryStore(make_engine(s.env["SCHEDULER_DATABASE_URL"]))
        run = _report_tick()
        store.claim(run, datetime.now(UTC))
        sent = s.python(
            "from scheduler.celery_app import app\n"
            "for _ in range(3):\n"
            "    app.send_task('jobs.reports.build_report', args=['dup'],"
            f" task_id='{run.id}', headers={{'scheduler_trigger': 'schedule'}})"
        )
        assert sent.returncode == 0, sent.stderr
        s.worker(concurrency=2)
        wait_for(lambda: _status(s, run.id, "succeeded"), 60, "the run", s)
        # Each of the two other copies is acknowledged without running.
        wait_for(lambda: s.logs().count("duplicate delivery") >= 2, 30, "the other copies", s)
        reports = list((tmp_path / "var" / "reports").glob("dup-*.json"))
        assert len(reports) == 1
        assert _run(s, run.id)["attempts"] == 1  # type: ignore[index]
        store.engine.dispose()
