from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import insert

from scheduler.cli import cli
from scheduler.cli_ops import parse_since
from scheduler.history.db import make_engine
from scheduler.history.models import RunStatus, Trigger
from scheduler.history.schema import upgrade
from scheduler.history.store import RUNS, HistoryStore, NewRun, run_id_for

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)


def _scheduler(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "schedules.yaml").write_text(
        "jobs:\n  ping: {task: jobs.health.ping, every: 30s}\n"
    )
    return subprocess.run(
        [sys.executable, "-m", "scheduler", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **env},
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1d", NOW - timedelta(days=1)),
        ("90m", NOW - timedelta(minutes=90)),
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("2026-03-01T10:00:00+01:00", datetime(2026, 3, 1, 9, tzinfo=UTC)),
    ],
)
def test_since_takes_a_duration_or_an_instant(text: str, expected: datetime) -> None:
    assert parse_since(text, NOW) == expected


@pytest.mark.slow  # `scheduler` processes: over a second of CPU each to start
def test_status_masks_secrets_and_fails_when_the_database_is_down(tmp_path: Path) -> None:
    result = _scheduler(
        tmp_path,
        "status",
        SCHEDULER_DATABASE_URL="postgresql://app:hunter2@127.0.0.1:1/history",
        SCHEDULER_BROKER_URL="redis://:hunter2@127.0.0.1:1/0",
    )
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "hunter2" not in output
    assert "postgresql://app:***@127.0.0.1:1/history" in output
    assert "redis://:***@127.0.0.1:1/0" in output
    assert "unreachable" in output
    assert "Traceback" not in output


def test_history_on_a_fresh_machine_says_there_is_none_yet(tmp_path: Path) -> None:
    result = _scheduler(tmp_path, "history")
    assert result.returncode == 1
    assert "no history yet" in result.stderr
    assert not (tmp_path / "var").exists()  # a read leaves nothing behind


@pytest.mark.slow  # `scheduler` processes: over a second of CPU each to start
def test_db_upgrade_then_empty_history_and_purge(tmp_path: Path) -> None:
    upgraded = _scheduler(tmp_path, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "at revision" in upgraded.stdout
    history = _scheduler(tmp_path, "history", "--format", "json")
    assert history.returncode == 0 and json.loads(history.stdout) == []
    purged = _scheduler(tmp_path, "purge", "--older-than", "30d")
    assert purged.returncode == 0 and purged.stdout.startswith("purged 0 runs")
    bad = _scheduler(tmp_path, "purge", "--older-than", "soon")
    assert bad.returncode == 2


@pytest.mark.slow  # `scheduler` processes: over a second of CPU each to start
def test_status_counts_runs_sent_long_ago_that_no_worker_started(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'history.sqlite'}"
    engine = make_engine(database)
    upgrade(engine)
    store = HistoryStore(engine)
    now = datetime.now(UTC)
    for job, sent_ago in (("old", 90), ("older", 300), ("fresh", 10), ("unsent", None)):
        tick = now - timedelta(seconds=sent_ago or 0)
        run = NewRun(
            run_id_for(job, tick), job, "jobs.health.ping", Trigger.SCHEDULE, RunStatus.QUEUED, tick
        )
        store.claim(run, tick)
        if sent_ago is not None:
            store.mark_enqueued_many([run.id], tick)
    engine.dispose()
    result = _scheduler(tmp_path, "status", SCHEDULER_DATABASE_URL=database)
    oldest = f"{now - timedelta(seconds=300):%Y-%m-%d %H:%M:%S}Z"
    assert f"runs:     2 sent over 60 s ago and not started (oldest sent {oldest}" in result.stdout


def test_stats_say_when_p50_and_p95_come_from_duration_buckets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'history.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(RUNS),
            [
                {
                    "id": f"run-{n}",
                    "job_name": "ping",
                    "task_name": "jobs.health.ping",
                    "trigger": Trigger.SCHEDULE,
                    "status": RunStatus.SUCCEEDED,
                    "created_at": now - timedelta(days=3, minutes=-1) + n * timedelta(minutes=30),
                    "duration_s": 2.0,
                    "attempts": 1,
                }
                for n in range(140)
            ],
        )
    engine.dispose()
    (tmp_path / "schedules.yaml").write_text(
        "jobs:\n  ping: {task: jobs.health.ping, every: 30s}\n"
    )
    monkeypatch.chdir(tmp_path)
    env = {"SCHEDULER_DATABASE_URL": url, "SCHEDULER_SCHEDULE_FILE": "schedules.yaml"}
    summed = CliRunner().invoke(cli, ["stats", "--since", "2d"], env=env)
    assert summed.exit_code == 0, summed.output
    title, *table = summed.output.splitlines()
    assert title.endswith("; p50/p95 within 2.2% (--exact to read every run)")
    (row,) = [line for line in table if " ping " in line]
    assert " 92 " in row and "100.0%" in row and "2.000s" not in row
    exact = CliRunner().invoke(cli, ["stats", "--since", "2d", "--exact"], env=env)
    assert exact.exit_code == 0, exact.output
    assert "within" not in exact.output.splitlines()[0]
    (row,) = [line for line in exact.output.splitlines() if " ping " in line]
    assert " 92 " in row and "2.000s" in row
