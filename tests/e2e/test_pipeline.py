"""End to end: beat and worker processes, real brokers and databases, the history CLI."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import suppress
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.harness import REPO, System, system, wait_for
from tests.webhook import webhook_receiver

pytestmark = pytest.mark.slow

SCHEDULE = """\
jobs:
  tick:
    task: jobs.health.ping
    every: 1s
  boom:
    task: jobs.demo.fail
    every: 2s
    overlap: allow
    retry: {max: 1, backoff: 1s}
    notify: {on: [failed], webhook: "HOOK"}
  slowpoke:
    task: jobs.demo.slow
    every: 2s
    kwargs: {seconds: 30}
    time_limit: 1s
    # Its own worker: a prefork child killed at a hard time limit can take a task that was
    # just handed to it down with it (a Celery race), so the other jobs do not share it.
    queue: slow
  manual-only:
    task: jobs.reports.build_report
    at: 2099-01-01T00:00
    args: [manual]
"""

COMBOS = [
    pytest.param("redis", "postgresql", id="redis-postgresql"),
    pytest.param("amqp", "mariadb", id="rabbitmq-mariadb"),
    pytest.param("sqlite", "sqlite", id="embedded-sqlite"),
]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _finished(system_: System, job: str, status: str, count: int) -> list[dict[str, object]]:
    rows = [r for r in system_.history(job=job) if r["status"] == status]
    return rows if len(rows) >= count else []


@pytest.mark.parametrize(("broker_kind", "database_kind"), COMBOS)
def test_beat_and_worker_record_every_kind_of_run(
    broker_kind: str, database_kind: str, tmp_path: Path
) -> None:
    with system(broker_kind, database_kind, tmp_path) as s, webhook_receiver() as hook:
        s.write_schedule(SCHEDULE.replace("HOOK", hook.url))
        s.worker()
        s.worker("slow-worker", concurrency=1, queues="slow")
        s.beat()

        ticks = wait_for(lambda: _finished(s, "tick", "succeeded", 4), 60, "4 succeeded ticks", s)
        # Succeeded runs of an `every: 1s` job: whole-second ticks, enqueued promptly.
        for row in ticks:
            tick_at = _at(row["tick_at"])
            assert tick_at.microsecond == 0
            assert _at(row["enqueued_at"]) - tick_at < timedelta(seconds=1)
            assert _at(row["started_at"]) <= _at(row["finished_at"])
            assert row["duration_s"] is not None and row["duration_s"] >= 0
            assert row["worker"] and "@" in row["worker"]
            assert row["trigger"] == "schedule" and row["attempts"] == 1
            assert row["result"]["host"]
        tick_times = sorted(_at(r["tick_at"]) for r in ticks)
        assert len(set(tick_times)) == len(tick_times)

        failed = wait_for(lambda: _finished(s, "boom", "failed", 1), 60, "a failed run", s)[0]
        assert failed["error_type"] == "DemoFailure"
        assert failed["error_message"] == "this job fails on purpose"
        assert "DemoFailure" in failed["traceback"]
        assert failed["attempts"] == 2  # retry: {max: 1}
        # notify: {on: [failed]}: one POST for the failed run, none for its retry.
        posted = wait_for(
            lambda: [h for h in hook.received if h["run_id"] == failed["id"]], 30, "a webhook", s
        )
        assert posted[0]["status"] == "failed" and posted[0]["job"] == "boom"
        assert posted[0]["error_type"] == "DemoFailure"
        assert {h["status"] for h in hook.received} == {"failed"}

        timed_out = wait_for(
            lambda: _finished(s, "slowpoke", "timed_out", 1), 60, "a timed-out run", s
        )[0]
        assert timed_out["error_type"] == "TimeLimitExceeded"

        manual = s.cli("trigger", "manual-only", "--wait", "--timeout", "60")
        assert manual.returncode == 0, manual.stderr + s.logs()[-4000:]
        run_id, outcome = manual.stdout.splitlines()[:2]
        assert outcome.startswith("succeeded")
        (row,) = [r for r in s.cli_history("--trigger", "manual") if r["id"] == run_id]
        assert row["job_name"] == "manual-only" and row["status"] == "succeeded"
        assert Path(row["result"]).name.startswith("manual-")

        api = s.python(
            "import json; from scheduler.celery_app import app; from jobs.demo import slow\n"
            "r = slow.delay(0.1); print(r.id); print(json.dumps(r.get(timeout=60)))"
        )
        assert api.returncode == 0, api.stderr + s.logs()[-4000:]
        api_id, value = api.stdout.split()
        assert json.loads(value) == 0.1
        api_row = wait_for(
            lambda: [
                r
                for r in s.history(trigger="api")
                if r["id"] == api_id and r["status"] == "succeeded"
            ],
            30,
            "the api run",
            s,
        )[0]
        assert api_row["job_name"] == "jobs.demo.slow" and api_row["task_name"] == "jobs.demo.slow"
        assert api_row["args"] == [0.1]

        jobs = s.cli("jobs")
        assert jobs.returncode == 0 and "succeeded" in jobs.stdout
        stats = s.cli("stats")
        assert stats.returncode == 0 and "tick" in stats.stdout


def test_two_beats_send_each_tick_once(tmp_path: Path) -> None:
    import redis

    with system("redis", "postgresql", tmp_path) as s:
        s.write_schedule(
            "jobs:\n"
            "  a: {task: jobs.demo.noop, every: 1s, overlap: allow}\n"
            "  b: {task: jobs.demo.noop, every: 2s, overlap: allow}\n"
            "  c: {task: jobs.demo.noop, cron: '* * * * *', overlap: allow}\n"
        )
        # No worker: every message stays in the queue, so duplicates cannot hide.
        beats = [s.beat("beat-1"), s.beat("beat-2")]
        wait_for(lambda: len(s.history(job="a")) >= 2, 30, "both beats running", s)
        time.sleep(30)
        s.stop_together(beats)
        client = redis.Redis.from_url(s.env["SCHEDULER_BROKER_URL"])
        messages = [json.loads(m) for m in client.lrange("celery", 0, -1)]
        sent = Counter(m["headers"]["id"] for m in messages)
        assert sent and max(sent.values()) == 1, "a tick was sent twice"
        rows = s.cli_history("--job", "a")
        sent_rows = [r for r in rows if r["enqueued_at"]]
        assert {r["id"] for r in sent_rows} == {
            m["headers"]["id"] for m in messages if m["headers"]["scheduler_job"] == "a"
        }
        # Ticks claimed ahead of their instant (beat.PREPARE_AHEAD) and not yet due when the
        # beats stopped are queued, unsent: all of them after the last one sent.
        last_sent = max(_at(r["tick_at"]) for r in sent_rows)
        unsent = [_at(r["tick_at"]) for r in rows if not r["enqueued_at"]]
        assert all(last_sent < t <= last_sent + timedelta(seconds=11) for t in unsent)
        ticks = sorted(_at(r["tick_at"]) for r in rows)
        assert len(ticks) >= 30
        steps = {b - a for a, b in itertools.pairwise(ticks)}
        assert steps == {timedelta(seconds=1)}, f"a tick is missing: steps {steps}"


HOSTILE = [
    # (serializer, task name, run id): pickle and YAML are refused before anything is
    # decoded; a JSON message naming a task that is not registered is refused by name.
    ("pickle", "jobs.reports.build_report", "pickled-1"),
    ("yaml", "jobs.reports.build_report", "yaml-1"),
    ("json", "os.system", "unknown-task-1"),
]


def test_hostile_messages_are_refused_and_run_nothing(tmp_path: Path) -> None:
    from kombu import Connection, Exchange, Producer

    with system("redis", "postgresql", tmp_path) as s:
        s.worker()
        wait_for(lambda: "ready" in s.logs(), 60, "the worker", s)
        marker = tmp_path / "var" / "reports"
        with Connection(s.env["SCHEDULER_BROKER_URL"]) as conn:
            producer = Producer(
                conn.channel(), exchange=Exchange("celery", type="direct"), routing_key="celery"
            )
            for serializer, task, run_id in HOSTILE:
                headers = {"id": run_id, "task": task, "lang": "py", "retries": 0}
                if serializer == "yaml":  # kombu has no YAML encoder here: send the bytes
                    producer.publish(
                        "- [evil]\n- {}\n- {}\n",
                        content_type="application/x-yaml",
                        content_encoding="utf-8",
                        headers=headers,
                    )
                else:
                    producer.publish([["evil"], {}, {}], serializer=serializer, headers=headers)

        def refused() -> bool:
            logs = s.logs().lower()
            return logs.count("disallowed") >= 2 and "unregistered task" in logs

        wait_for(refused, 30, "the worker to refuse all three messages", s)
        time.sleep(2)
        assert not marker.exists() or not any(marker.iterdir())
        ids = {run_id for _, _, run_id in HOSTILE}
        assert [r for r in s.history() if r["id"] in ids] == []


def _scheduler_up(tmp_path: Path) -> tuple[System, subprocess.Popen[bytes]]:
    """`scheduler up` on the shipped schedule and the embedded defaults, in its own session."""
    shutil.copy(REPO / "schedules.yaml", tmp_path / "schedules.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
    env["PYTHONPATH"] = str(REPO)
    s = System(tmp_path, env)
    s.env["SCHEDULER_SCHEDULE_FILE"] = str(tmp_path / "schedules.yaml")
    return s, s.start(sys.executable, "-m", "scheduler", "up", name="up")


def _wait_until_alive(s: System) -> None:
    """Until `scheduler status` shows beat and worker alive: `scheduler up` has migrated the
    database by then (read earlier, its tables may still lack columns)."""
    wait_for(
        lambda: (
            (s.workdir / "var" / "history.sqlite").exists()
            and s.cli("status").stdout.count("1 alive") == 2
        ),
        60,
        "beat and worker alive",
        s,
    )


def _session_members(session: int) -> list[int]:
    """The live (not zombie) processes of a session, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended while we looked
        if fields[0] != "Z" and int(fields[3]) == session:
            found.append(int(stat.parent.name))
    return found


def test_scheduler_up_runs_the_shipped_schedule_on_embedded_defaults(tmp_path: Path) -> None:
    s, up = _scheduler_up(tmp_path)
    try:
        _wait_until_alive(s)
        # The shipped heartbeat runs every 30 s: within a minute it is in the history.
        rows = wait_for(
            lambda: _finished(s, "heartbeat", "succeeded", 1),
            75,
            "a heartbeat run",
            s,
        )
        assert rows[0]["trigger"] == "schedule"
        status = s.cli("status")
        assert "1 alive" in status.stdout, status.stdout
    finally:
        code = s.stop(up, signal.SIGINT, timeout=40)
    assert code == 0, s.logs()[-4000:]
    assert (tmp_path / "var" / "broker.sqlite").exists()


def test_scheduler_up_stops_beat_and_worker_on_sigterm_to_itself_alone(tmp_path: Path) -> None:
    # As `docker stop`, systemd or a supervisor do: SIGTERM to the main process only.
    s, up = _scheduler_up(tmp_path)
    try:
        _wait_until_alive(s)
        assert len(_session_members(up.pid)) >= 3  # up, beat, worker (and its pool)
        os.kill(up.pid, signal.SIGTERM)
        assert up.wait(timeout=40) == 0, s.logs()[-4000:]
        wait_for(lambda: not _session_members(up.pid), 30, "beat and worker to exit", s)
        assert "stopping beat and worker" in s.logs()
    finally:
        with suppress(ProcessLookupError):  # whatever is left of the session, orphans too
            os.killpg(up.pid, signal.SIGKILL)
        s.stop(up, signal.SIGKILL, timeout=10)
