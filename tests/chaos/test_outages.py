"""Servers restarted under a running beat and worker: nothing lost, nothing stuck, no crash."""

from __future__ import annotations

import subprocess
import time
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from tests.e2e.harness import system, wait_for
from tests.services import wait_port

pytestmark = [pytest.mark.slow, pytest.mark.chaos]

SCHEDULE = "jobs:\n  every-second: {task: jobs.demo.noop, every: 1s, overlap: allow}\n"


def _postgres(action: str) -> None:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[0]
    subprocess.run(
        [
            "pg_ctlcluster",
            "--skip-systemctl-redirect",
            version,
            "main",
            action,
            *(["-m", "fast"] if action == "stop" else []),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


def _settled(s, job: str):  # type: ignore[no-untyped-def]
    rows = s.history("--job", job)
    return rows if rows and all(r["status"] == "succeeded" for r in rows) else None


def _assert_every_second_ran_once(rows: list[dict[str, object]]) -> None:
    ticks = sorted(datetime.fromisoformat(str(r["tick_at"])) for r in rows)
    assert {b - a for a, b in pairwise(ticks)} == {timedelta(seconds=1)}, "a tick is missing"
    assert all(r["attempts"] == 1 for r in rows)


def test_postgresql_restart_loses_no_run(tmp_path: Path) -> None:
    if not Path("/etc/postgresql").exists():
        pytest.skip("PostgreSQL is not managed by pg_ctlcluster here")
    with system("redis", "postgresql", tmp_path) as s:
        s.write_schedule(SCHEDULE)
        worker = s.worker()
        beat = s.beat()
        wait_for(lambda: len(s.history()) >= 3, 60, "the first runs", s)
        _postgres("stop")
        try:
            time.sleep(6)
        finally:
            _postgres("start")
        wait_port("127.0.0.1", 5432)
        time.sleep(8)
        assert beat.poll() is None and worker.poll() is None, "a process died:\n" + s.logs()[-5000:]
        rows = wait_for(lambda: _settled(s, "every-second"), 60, "every run recorded", s)
        _assert_every_second_ran_once(rows)
        assert len(rows) >= 15


def test_redis_restart_loses_no_tick(tmp_path: Path) -> None:
    with system("redis", "postgresql", tmp_path) as s:
        s.write_schedule(SCHEDULE)
        worker = s.worker()
        beat = s.beat()
        wait_for(lambda: len(s.history()) >= 3, 60, "the first runs", s)
        subprocess.run(["redis-cli", "-p", "6379", "shutdown", "nosave"], capture_output=True)
        try:
            time.sleep(5)
        finally:
            subprocess.run(
                [
                    "redis-server",
                    "--daemonize",
                    "yes",
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    "6379",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                check=True,
                capture_output=True,
            )
        wait_port("127.0.0.1", 6379)
        time.sleep(10)
        assert beat.poll() is None and worker.poll() is None, "a process died:\n" + s.logs()[-5000:]
        # Ticks due while Redis was down were claimed and are sent once it is back.
        rows = wait_for(lambda: _settled(s, "every-second"), 90, "every run to finish", s)
        _assert_every_second_ran_once(rows)
        assert len(rows) >= 15


def test_rabbitmq_restart_loses_no_tick(tmp_path: Path) -> None:
    with system("amqp", "postgresql", tmp_path) as s:
        s.write_schedule(SCHEDULE)
        worker = s.worker()
        beat = s.beat()
        wait_for(lambda: len(s.history()) >= 3, 60, "the first runs", s)
        subprocess.run(
            ["rabbitmqctl", "-q", "stop_app"], check=True, capture_output=True, timeout=60
        )
        try:
            time.sleep(5)
        finally:
            subprocess.run(
                ["rabbitmqctl", "-q", "start_app"], check=True, capture_output=True, timeout=120
            )
        wait_port("127.0.0.1", 5672)
        time.sleep(10)
        assert beat.poll() is None and worker.poll() is None, "a process died:\n" + s.logs()[-5000:]
        rows = wait_for(lambda: _settled(s, "every-second"), 90, "every run to finish", s)
        _assert_every_second_ran_once(rows)
        assert len(rows) >= 15
