"""Servers restarted under a running beat and worker: nothing lost, nothing stuck, no crash."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.harness import System, system, wait_for
from tests.services import REDIS_URL, servers_exclusively, wait_port

pytestmark = [pytest.mark.slow, pytest.mark.chaos]

SCHEDULE = "jobs:\n  every-second: {task: jobs.demo.noop, every: 1s, overlap: allow}\n"
REDIS_PORT = urlsplit(REDIS_URL).port or 6379


def _run(*args: str, timeout: float = 120) -> None:
    subprocess.run(list(args), check=True, capture_output=True, timeout=timeout)


def _postgres(action: str) -> Callable[[], None]:
    def act() -> None:
        version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[0]
        fast = ["-m", "fast"] if action == "stop" else []
        _run("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action, *fast)

    return act


def _redis_stop() -> None:
    subprocess.run(["redis-cli", "-p", str(REDIS_PORT), "shutdown", "nosave"], capture_output=True)


def _redis_start() -> None:
    _run(
        "redis-server",
        "--daemonize",
        "yes",
        "--bind",
        "127.0.0.1",
        "--port",
        str(REDIS_PORT),
        "--save",
        "",
        "--appendonly",
        "no",
    )


# (broker, database, stop the server, start it again, its port)
OUTAGES = [
    pytest.param(
        "redis", "postgresql", _postgres("stop"), _postgres("start"), 5432, id="postgresql"
    ),
    pytest.param("redis", "postgresql", _redis_stop, _redis_start, REDIS_PORT, id="redis"),
    pytest.param(
        "amqp",
        "postgresql",
        lambda: _run("rabbitmqctl", "-q", "stop_app"),
        lambda: _run("rabbitmqctl", "-q", "start_app"),
        5672,
        id="rabbitmq",
    ),
]


def _settled(s: System) -> list[dict[str, object]] | None:
    rows = s.history(job="every-second")
    # The running beat has claimed the next few ticks ahead of their instant: those wait.
    due = [r for r in rows if datetime.fromisoformat(str(r["tick_at"])) < datetime.now(UTC)]
    return due if due and all(r["status"] == "succeeded" for r in due) else None


@pytest.mark.parametrize(("broker_kind", "database_kind", "stop", "start", "port"), OUTAGES)
def test_a_server_restart_loses_and_doubles_no_tick(
    broker_kind: str,
    database_kind: str,
    stop: Callable[[], None],
    start: Callable[[], None],
    port: int,
    tmp_path: Path,
) -> None:
    servers_exclusively()  # tests running in parallel must not see the server go away
    with system(broker_kind, database_kind, tmp_path) as s:
        s.write_schedule(SCHEDULE)
        worker = s.worker()
        beat = s.beat()
        # Runs that ran, not rows: ticks are claimed (rows) up to 10 s ahead, so rows alone
        # would stop the server before the worker has even connected.
        wait_for(
            lambda: sum(r["status"] == "succeeded" for r in s.history()) >= 3,
            60,
            "the first runs to succeed",
            s,
        )
        stop()
        try:
            time.sleep(6)
        finally:
            start()
        wait_port("127.0.0.1", port)
        time.sleep(10)
        assert beat.poll() is None and worker.poll() is None, "a process died:\n" + s.logs()[-5000:]
        # Ticks due during the outage are claimed (or retried) and sent once it is over;
        # runs finished during a database outage are written once it is back.
        rows = wait_for(lambda: _settled(s), 90, "every run to finish", s)
        ticks = sorted(datetime.fromisoformat(str(r["tick_at"])) for r in rows)
        assert {b - a for a, b in pairwise(ticks)} == {timedelta(seconds=1)}, "a tick is missing"
        assert all(r["attempts"] == 1 for r in rows)
        assert len(rows) >= 15


def test_runs_waiting_in_redis_when_it_restarts_without_persistence_still_run(
    tmp_path: Path,
) -> None:
    servers_exclusively()
    with system("redis", "postgresql", tmp_path) as s:
        s.write_schedule(SCHEDULE)
        beat = s.beat()
        # No worker yet: the messages of the first runs wait in Redis, and go with its data.
        wait_for(
            lambda: sum(r["enqueued_at"] is not None for r in s.history()) >= 2,
            60,
            "the first runs to be sent",
            s,
        )
        _redis_stop()
        try:
            time.sleep(2)
        finally:
            _redis_start()
        wait_port("127.0.0.1", REDIS_PORT)
        s.worker()
        # Left as they were, those runs would wait `queued` for an hour, then end `lost`.
        rows = wait_for(lambda: _settled(s), 60, "every run to finish", s)
        assert beat.poll() is None
        ticks = sorted(datetime.fromisoformat(str(r["tick_at"])) for r in rows)
        assert {b - a for a, b in pairwise(ticks)} == {timedelta(seconds=1)}, "a tick is missing"
        assert "the broker has lost its data" in s.logs()
