"""Warm shutdown and live reload with real processes."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.e2e.harness import system, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.chaos]


def test_warm_shutdown_finishes_the_running_job(tmp_path: Path) -> None:
    with system("redis", "postgresql", tmp_path) as s:
        s.write_schedule(
            "jobs:\n  slow:\n    task: jobs.demo.slow\n"
            "    at: 2099-01-01T00:00\n    kwargs: {seconds: 4}\n"
        )
        worker = s.worker(concurrency=1)
        wait_for(lambda: "ready" in s.logs(), 60, "the worker", s)
        run_id = s.cli("trigger", "slow").stdout.strip()
        wait_for(
            lambda: [r for r in s.history() if r["id"] == run_id and r["status"] == "running"],
            30,
            "the run to start",
            s,
        )
        # SIGTERM to the main process only, as `docker stop` or systemd does: a signal to the
        # whole process group would kill the pool child too.
        os.kill(worker.pid, signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        (row,) = [r for r in s.history() if r["id"] == run_id]
        assert row["status"] == "succeeded" and row["attempts"] == 1


def _jobs_run(s) -> set[str]:  # type: ignore[no-untyped-def]
    return {r["job_name"] for r in s.history() if r["status"] == "succeeded"}


def test_edits_take_effect_while_beat_runs(tmp_path: Path) -> None:
    with system("redis", "postgresql", tmp_path) as s:
        s.write_schedule("jobs:\n  first: {task: jobs.demo.noop, every: 1s}\n")
        s.worker()
        beat = s.beat()
        wait_for(lambda: "first" in _jobs_run(s), 60, "the first job", s)

        # An edit in place adds a job.
        s.write_schedule(
            "jobs:\n  first: {task: jobs.demo.noop, every: 1s}\n"
            "  second: {task: jobs.demo.noop, every: 1s}\n"
        )
        wait_for(lambda: "second" in _jobs_run(s), 15, "the added job", s)

        # An invalid edit is logged with every error; the last valid schedule keeps running.
        s.write_schedule(
            "jobs:\n  first: {task: jobs.demo.noop, every: 0s}\n"
            "  third: {task: jobs.nope, every: 1s}\n"
        )
        wait_for(
            lambda: "jobs.first.every" in s.logs() and "jobs.third.task" in s.logs(),
            15,
            "the errors in the log",
            s,
        )
        before = len(s.history(job="second"))
        wait_for(lambda: len(s.history(job="second")) > before, 15, "`second` to go on", s)

        # A file replaced by rename (as editors and ConfigMaps do) removes `second`.
        replacement = tmp_path / "schedules.new"
        replacement.write_text("jobs:\n  first: {task: jobs.demo.noop, every: 1s}\n")
        os.replace(replacement, s.schedule_file)
        wait_for(lambda: "reloaded: 1 jobs" in s.logs(), 15, "the reload", s)
        time.sleep(2)
        settled = len(s.history(job="second"))
        time.sleep(3)
        assert len(s.history(job="second")) == settled
        assert beat.poll() is None
