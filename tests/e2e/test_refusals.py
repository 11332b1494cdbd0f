"""Beat and worker refuse to start on an invalid schedule file or an old database schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import REPO

pytestmark = pytest.mark.slow


def _run(tmp_path: Path, *args: str, schedule: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "schedules.yaml").write_text(schedule)
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "SCHEDULER_SCHEDULE_FILE": str(tmp_path / "schedules.yaml"),
        "SCHEDULER_DATABASE_URL": f"sqlite:///{tmp_path / 'history.sqlite'}",
        "SCHEDULER_BROKER_URL": f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}",
    }
    return subprocess.run(
        [sys.executable, "-m", "celery", "-A", "scheduler", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _migrate(tmp_path: Path) -> None:
    from scheduler.history.db import make_engine
    from scheduler.history.schema import upgrade

    upgrade(make_engine(f"sqlite:///{tmp_path / 'history.sqlite'}"))


def test_beat_refuses_an_invalid_schedule_file_with_every_error(tmp_path: Path) -> None:
    _migrate(tmp_path)
    bad = (
        "jobs:\n  a:\n    task: jobs.health.ping\n    cron: '61 * * * *'\n"
        "  b:\n    task: jobs.nope\n    every: 1s\n"
    )
    result = _run(tmp_path, "beat", "-s", str(tmp_path / "state"), schedule=bad)
    assert result.returncode != 0
    assert "schedules.yaml:4:12: jobs.a.cron: minute 61 is out of range 0-59" in result.stderr
    assert "schedules.yaml:6:11: jobs.b.task: task 'jobs.nope' is not registered" in result.stderr


@pytest.mark.parametrize("command", [["beat", "-s", "state"], ["worker", "--pool=solo"]])
def test_beat_and_worker_demand_the_current_schema(tmp_path: Path, command: list[str]) -> None:
    result = _run(tmp_path, *command, schedule="jobs: {}\n")
    assert result.returncode == 1
    assert "run `scheduler db upgrade`" in result.stderr
