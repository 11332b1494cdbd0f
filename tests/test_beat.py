"""The beat (SPEC §5) against a real Redis broker and real history databases.

Time is a fake clock that the tests move; `Beat.tick()` is called after each move. What was
dispatched is read back from where it lands: the run rows in the history database and the
task messages in the Redis list of the job's queue.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

import scheduler.beat
from scheduler.beat import Beat
from scheduler.celery_app import create_app
from scheduler.config import Settings
from scheduler.history import rollup
from scheduler.history.db import make_engine
from scheduler.history.durations import RELATIVE_ERROR
from scheduler.history.models import Run, RunStatus
from scheduler.history.schema import upgrade
from scheduler.history.store import HistoryStore, RunFilter, run_id_for
from tests.services import database, redis_db

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # on the grid of every `every` job below
S = timedelta(seconds=1)
M = timedelta(minutes=1)


@pytest.fixture(autouse=True)
def poll_the_file_on_every_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scheduler.beat, "RELOAD_EVERY", 0.0)


class Clock:
    """The beat's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Broker:
    """A private Redis DB and queue; kombu keeps a queue's messages as JSON in a list."""

    url: str
    client: redis.Redis
    queue: str

    def messages(self) -> list[dict[str, Any]]:
        """Every message in the queue, oldest first (per priority: one list per level)."""
        found = []
        for key in sorted(self.client.keys(f"{self.queue}*")):
            found += [json.loads(m) for m in reversed(self.client.lrange(key, 0, -1))]
        return found

    def ids(self) -> list[str]:
        return [m["headers"]["id"] for m in self.messages()]


@pytest.fixture
def broker() -> Iterator[Broker]:
    with redis_db() as url:
        client = redis.Redis.from_url(url)
        try:
            yield Broker(url, client, f"q-{uuid.uuid4().hex}")
        finally:
            client.close()


def migrate(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()


class Harness:
    """A schedule file, a fake clock and the beats started on one database and broker."""

    def __init__(self, tmp_path: Path, broker: Broker, database_url: str) -> None:
        self.path = tmp_path / "schedules.yaml"
        self.state = tmp_path / "beat-state"
        self.broker = broker
        self.clock = Clock(T0)
        self.settings = Settings.from_env(
            {
                "SCHEDULER_BROKER_URL": broker.url,
                "SCHEDULER_DATABASE_URL": database_url,
                "SCHEDULER_SCHEDULE_FILE": str(self.path),
            }
        )
        self.store = HistoryStore(make_engine(database_url))
        self._beats: list[Beat] = []
        self._mtime_ns = 0

    def write(self, jobs: str) -> None:
        """Write the schedule file with these jobs (the YAML under `jobs:`)."""
        body = textwrap.indent(textwrap.dedent(jobs).strip("\n"), "  ")
        self.path.write_text(
            f"timezone: UTC\ndefaults:\n  queue: {self.broker.queue}\njobs:\n{body}\n"
        )
        self.touch()

    def touch(self) -> None:
        # Each write gets a later mtime, as if seconds apart: two writes within the file
        # system's timestamp granularity could otherwise look like no change at all.
        self._mtime_ns = max(self._mtime_ns, os.stat(self.path).st_mtime_ns) + 10**9
        os.utime(self.path, ns=(self._mtime_ns, self._mtime_ns))

    def beat(self) -> Beat:
        """A started beat (like `celery beat` in its own process, with its own app)."""
        app = create_app(self.settings)
        beat = Beat(
            app,
            clock=self.clock,
            settings=self.settings,
            schedule_filename=str(self.state),
            max_interval=1,
        )
        self._beats.append(beat)
        return beat

    def at(self, offset: timedelta, *beats: Beat) -> None:
        """Move the clock to T0 + offset and let each beat tick."""
        self.clock.now = T0 + offset
        for beat in beats:
            beat.tick()

    def runs(self, job: str) -> list[Run]:
        found = self.store.runs(RunFilter(job_name=job, limit=10_000))
        return sorted(found, key=lambda run: run.tick_at or T0)

    def history(self, job: str) -> list[tuple[timedelta, str, str]]:
        """(tick offset from T0, status, trigger) of the job's runs, in tick order."""
        return [
            (run.tick_at - T0, run.status, run.trigger) for run in self.runs(job) if run.tick_at
        ]

    def sent(self, job: str) -> list[timedelta]:
        """Tick offsets of the job's messages in the broker, in order."""
        ids = {
            run_id_for(job, run.tick_at): run.tick_at - T0 for run in self.runs(job) if run.tick_at
        }
        return [ids[m] for m in self.broker.ids() if m in ids]

    def finish(self, job: str, offset: timedelta) -> None:
        """What a worker records when the run of a tick succeeds."""
        self.store.record_finished(
            run_id_for(job, T0 + offset), RunStatus.SUCCEEDED, self.clock.now
        )

    def close(self) -> None:
        for beat in self._beats:
            beat.close(drain=False)  # the fake clock would never bring their instants
            beat.store.engine.dispose()
            beat.app.close()
        self.store.engine.dispose()


@pytest.fixture
def core(tmp_path: Path, broker: Broker, database_url: str) -> Iterator[Harness]:
    """On SQLite, PostgreSQL and MariaDB."""
    migrate(database_url)
    harness = Harness(tmp_path, broker, database_url)
    yield harness
    harness.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def harness(request: pytest.FixtureRequest, tmp_path: Path, broker: Broker) -> Iterator[Harness]:
    """On SQLite and PostgreSQL."""
    with database(request.param, tmp_path) as url:
        migrate(url)
        harness = Harness(tmp_path, broker, url)
        yield harness
        harness.close()


PING = """
ping:
  task: jobs.health.ping
  every: 10s
  overlap: allow
"""

QUEUED, MISSED, SKIPPED = RunStatus.QUEUED, RunStatus.MISSED, RunStatus.SKIPPED


# --- dispatch -----------------------------------------------------------------------------


def test_each_tick_is_sent_once_with_its_run_id_and_the_job_options(core: Harness) -> None:
    core.write(
        """
        report:
          task: jobs.reports.build_report
          every: 10s
          args: [daily]
          kwargs: {format: json}
          priority: 5
          expires: 1h
          time_limit: 10m
          soft_time_limit: 9m
          retry: {max: 3, backoff: 30s, backoff_max: 10m}
          overlap: allow
        """
    )
    core.clock.now = T0 + 1 * S
    beat = core.beat()
    beat.tick()
    assert core.broker.messages() == []
    for k in (1, 2, 3):
        core.at(10 * k * S, beat, beat)  # a second tick at the same instant sends nothing
    ticks = [T0 + 10 * S, T0 + 20 * S, T0 + 30 * S]
    messages = core.broker.messages()
    assert [m["headers"]["id"] for m in messages] == [run_id_for("report", t) for t in ticks]
    for message, tick_at in zip(messages, ticks, strict=True):
        headers, properties = message["headers"], message["properties"]
        assert headers["task"] == "jobs.reports.build_report"
        assert headers["expires"] == (tick_at + timedelta(hours=1)).isoformat()
        assert headers["timelimit"] == [600.0, 540.0]
        assert headers["scheduler_job"] == "report"
        assert headers["scheduler_trigger"] == "schedule"
        assert headers["scheduler_retry"] == {"max": 3, "backoff": 30.0, "backoff_max": 600.0}
        assert properties["priority"] == 5
        assert properties["delivery_info"]["routing_key"] == core.broker.queue
        args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        assert (args, kwargs) == (["daily"], {"format": "json"})
    runs = [r for r in core.runs("report") if r.tick_at and r.tick_at <= core.clock.now]
    assert [(r.id, r.tick_at, r.status, r.trigger) for r in runs] == [
        (run_id_for("report", t), t, QUEUED, "schedule") for t in ticks
    ]
    # The next tick is already claimed, and its message built, but it is not sent before it
    # is due.
    ahead = [(r.tick_at, r.status, r.enqueued_at) for r in core.runs("report")][len(ticks) :]
    assert ahead == [(T0 + 40 * S, QUEUED, None)]
    for run, tick_at in zip(runs, ticks, strict=True):
        assert run.enqueued_at == tick_at
        assert run.task_name == "jobs.reports.build_report"
        assert run.queue == core.broker.queue
        assert (run.args, run.kwargs) == (["daily"], {"format": "json"})


def test_a_forbid_job_busy_when_its_tick_is_prepared_is_decided_at_the_tick(
    harness: Harness,
) -> None:
    harness.write("slow:\n  task: jobs.health.ping\n  every: 10s\n  overlap: forbid\n")
    harness.clock.now = T0 + 1 * S
    beat = harness.beat()
    harness.at(10 * S, beat)
    harness.at(15 * S, beat)  # the 20 s tick is prepared now, while the 10 s run is queued
    harness.finish("slow", 10 * S)
    harness.at(20 * S, beat)
    assert harness.sent("slow") == [10 * S, 20 * S]
    harness.at(25 * S, beat)  # still queued at 30 s: that tick is skipped
    harness.at(30 * S, beat)
    assert [h for h in harness.history("slow") if h[0] <= 30 * S] == [
        (10 * S, RunStatus.SUCCEEDED, "schedule"),
        (20 * S, QUEUED, "schedule"),
        (30 * S, SKIPPED, "schedule"),
    ]


def _sent_10s_prepared_20s(harness: Harness, jobs: str) -> Beat:
    """A beat on these jobs (every 10 s) at T0 + 15 s: the 10 s tick sent, the 20 s one
    claimed and prepared ahead."""
    harness.write(jobs)
    harness.clock.now = T0 + 1 * S
    beat = harness.beat()
    harness.at(10 * S, beat)
    harness.at(15 * S, beat)
    return beat


def test_a_tick_prepared_ahead_is_revoked_if_its_job_is_removed_before_it(
    harness: Harness,
) -> None:
    beat = _sent_10s_prepared_20s(
        harness, PING + "gone:\n  task: jobs.health.ping\n  every: 10s\n  overlap: allow\n"
    )
    harness.write(PING)
    harness.at(20 * S, beat)
    assert harness.sent("gone") == [10 * S]
    assert harness.history("gone") == [
        (10 * S, QUEUED, "schedule"),
        (20 * S, RunStatus.REVOKED, "schedule"),
    ]
    assert harness.sent("ping") == [10 * S, 20 * S]


def test_a_tick_prepared_ahead_goes_out_as_edited_if_its_job_changes_before_it(
    harness: Harness,
) -> None:
    beat = _sent_10s_prepared_20s(harness, PING)
    harness.write(PING + "  priority: 7\n")
    harness.at(16 * S, beat)
    harness.at(20 * S, beat)
    assert harness.sent("ping") == [10 * S, 20 * S]
    assert [m["properties"]["priority"] for m in harness.broker.messages()] == [0, 7]
    assert harness.history("ping")[:2] == [
        (10 * S, QUEUED, "schedule"),
        (20 * S, QUEUED, "schedule"),
    ]


def test_a_tick_prepared_ahead_is_given_back_if_the_edited_schedule_has_no_such_tick(
    harness: Harness,
) -> None:
    beat = _sent_10s_prepared_20s(harness, PING)
    harness.write(PING.replace("every: 10s", "every: 1m"))
    harness.at(16 * S, beat)
    # A restart plans from the last tick really claimed: the 20 s tick is not a missed one.
    assert harness.store.last_ticks()["ping"] <= T0 + 16 * S
    harness.at(20 * S, beat)
    harness.at(1 * M, beat)
    assert harness.sent("ping") == [10 * S, 1 * M]
    assert harness.history("ping") == [(10 * S, QUEUED, "schedule"), (1 * M, QUEUED, "schedule")]


def test_a_burst_too_large_for_the_usual_lead_is_claimed_earlier(harness: Harness) -> None:
    harness.write(
        "".join(
            f"j{i}:\n  task: jobs.health.ping\n  every: 60s\n  overlap: allow\n" for i in range(200)
        )
    )
    harness.clock.now = T0 + 1 * S
    beat = harness.beat()
    beat._lead.cost_s = 0.5  # as if measured on a slow machine: 200 runs, 150 s with margin
    harness.at(30 * S, beat)  # 30 s before the burst: outside the usual 10 s lead
    claimed = [harness.history(f"j{i}") for i in range(200)]
    assert claimed == [[(60 * S, QUEUED, "schedule")]] * 200
    assert harness.broker.ids() == []  # prepared, not sent before their instant
    harness.at(60 * S, beat)
    assert len(harness.broker.ids()) == 200


def test_two_beats_on_one_database_and_broker_send_each_tick_once(harness: Harness) -> None:
    harness.write(PING)
    harness.clock.now = T0 + 1 * S
    beats = [harness.beat(), harness.beat()]
    for k in range(1, 7):
        # Both beats tick the same instant at the same time, as two processes would.
        harness.clock.now = T0 + 10 * k * S
        threads = [threading.Thread(target=beat.tick) for beat in beats]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    expected = [10 * k * S for k in range(1, 7)]
    assert sorted(harness.sent("ping")) == expected
    assert len(harness.broker.messages()) == 6
    assert harness.history("ping") == [(t, QUEUED, "schedule") for t in expected]


def test_a_restart_after_downtime_applies_each_misfire_policy(harness: Harness) -> None:
    jobs = textwrap.dedent(
        """
    once:
      task: jobs.health.ping
      every: 1m
      misfire: run_once
      misfire_grace: 10s
    skip:
      task: jobs.health.ping
      every: 1m
      misfire: skip
      misfire_grace: 10s
    all:
      task: jobs.health.ping
      every: 1m
      misfire: run_all
      misfire_grace: 10s
      overlap: allow
    """
    )
    harness.write(jobs)
    harness.clock.now = T0 + 30 * S
    first = harness.beat()
    harness.at(1 * M, first)
    harness.finish("once", 1 * M)
    first.close(drain=False)
    # Down from T0+1m to T0+10m30s: ticks +2m .. +10m are more than 10 s late. A job added
    # to the file meanwhile was never seen, so it has no missed ticks.
    harness.write(jobs + "fresh:\n  task: jobs.health.ping\n  every: 1m\n")
    harness.clock.now = T0 + 10 * M + 30 * S
    second = harness.beat()
    second.tick()
    down = [k * M for k in range(2, 11)]
    assert harness.history("once") == [
        (1 * M, RunStatus.SUCCEEDED, "schedule"),
        *[(t, MISSED, "schedule") for t in down[:-1]],
        (10 * M, QUEUED, "catchup"),
    ]
    assert harness.history("skip") == [
        (1 * M, QUEUED, "schedule"),
        *[(t, MISSED, "schedule") for t in down],
    ]
    assert harness.history("all") == [
        (1 * M, QUEUED, "schedule"),
        *[(t, QUEUED, "catchup") for t in down],
    ]
    assert harness.history("fresh") == []
    assert harness.sent("once") == [1 * M, 10 * M]
    assert harness.sent("skip") == [1 * M]
    assert harness.sent("all") == [1 * M, *down]
    triggers = {
        m["headers"]["id"]: m["headers"]["scheduler_trigger"] for m in harness.broker.messages()
    }
    assert triggers[run_id_for("once", T0 + 10 * M)] == "catchup"
    harness.at(11 * M, second)
    assert harness.history("fresh") == [(11 * M, QUEUED, "schedule")]


def test_overlap_forbid_records_skipped_ticks_while_a_run_is_queued(harness: Harness) -> None:
    harness.write("guarded:\n  task: jobs.health.ping\n  every: 10s\n")  # forbid by default
    harness.clock.now = T0 + 1 * S
    beat = harness.beat()
    harness.at(10 * S, beat)
    harness.at(20 * S, beat)  # the +10 s run is still queued: no worker took it
    harness.at(30 * S, beat)
    harness.finish("guarded", 10 * S)
    harness.at(40 * S, beat)
    assert harness.history("guarded") == [
        (10 * S, RunStatus.SUCCEEDED, "schedule"),
        (20 * S, SKIPPED, "schedule"),
        (30 * S, SKIPPED, "schedule"),
        (40 * S, QUEUED, "schedule"),
    ]
    assert harness.sent("guarded") == [10 * S, 40 * S]


def test_a_claim_left_by_a_crashed_beat_is_sent_by_another_after_unsent_after(
    harness: Harness,
) -> None:
    # Both from the environment (SCHEDULER_PREPARE_AHEAD, SCHEDULER_UNSENT_AFTER); the
    # defaults, 10 s each, would claim the tick at 1 s and hold its recovery until 20 s.
    harness.settings = replace(harness.settings, prepare_ahead=3 * S, unsent_after=2 * S)
    harness.write(PING)
    harness.clock.now = T0 + 1 * S
    crashed = harness.beat()
    harness.at(6 * S, crashed)
    assert harness.history("ping") == []  # the 10 s tick is 4 s away: not claimed yet
    harness.at(7 * S, crashed)  # claimed and prepared 3 s ahead; this beat then dies
    assert harness.history("ping") == [(10 * S, QUEUED, "schedule")]
    survivor = harness.beat()
    harness.at(11 * S, survivor)
    harness.at(12 * S, survivor)  # up to 2 s after its instant, its owner may still send it
    assert harness.sent("ping") == []
    harness.at(13 * S, survivor)  # then any beat does (recovery runs every second here)
    assert harness.sent("ping") == [10 * S]
    assert harness.history("ping") == [(10 * S, QUEUED, "schedule")]


def test_runs_sent_but_not_started_are_sent_again_when_redis_loses_its_data(
    harness: Harness,
) -> None:
    harness.write(PING)
    harness.clock.now = T0 + 1 * S
    beat = harness.beat()
    harness.at(10 * S, beat)
    harness.at(20 * S, beat)
    harness.finish("ping", 10 * S)
    assert harness.sent("ping") == [10 * S, 20 * S]
    # What a restart without persistence leaves: no message, no kombu binding table. The
    # client reconnects without an error, so kombu still takes the queue as declared.
    harness.broker.client.flushdb()
    harness.at(25 * S, beat)  # the next look at the broker (every 5 s)
    assert harness.sent("ping") == [20 * S]  # the run that no worker had started
    harness.at(30 * S, beat)
    assert harness.sent("ping") == [20 * S, 30 * S]
    assert harness.broker.client.exists(f"_kombu.binding.{harness.broker.queue}")
    # A beat started on a broker that kept its data sends nothing again.
    harness.at(31 * S, harness.beat())
    assert harness.sent("ping") == [20 * S, 30 * S]
    assert [h[1] for h in harness.history("ping")][:3] == [RunStatus.SUCCEEDED, QUEUED, QUEUED]


# --- live reload ----------------------------------------------------------------------------


def test_a_job_added_to_the_file_is_picked_up_without_missed_ticks(harness: Harness) -> None:
    harness.write(PING)
    harness.clock.now = T0 + 1 * S
    beat = harness.beat()
    harness.at(10 * S, beat)
    # Added while the beat runs, with a cron schedule whose earlier ticks are all past.
    harness.write(PING + "added:\n  task: jobs.health.ping\n  cron: '* * * * *'\n")
    harness.at(15 * S, beat)
    assert harness.history("added") == []
    harness.at(1 * M, beat)
    assert harness.history("added") == [(1 * M, QUEUED, "schedule")]
    assert harness.sent("added") == [1 * M]
    assert harness.sent("ping") == [10 * S, 20 * S, 30 * S, 40 * S, 50 * S, 60 * S]


def test_rewriting_the_file_leaves_unchanged_jobs_running(harness: Harness) -> None:
    harness.write(PING)
    harness.clock.now = T0 + 1 * S
    beat = harness.beat()
    harness.at(10 * S, beat)
    harness.touch()  # saved without a change
    harness.at(20 * S, beat)
    # A job added above `ping` moves it down the file; its tick due now still goes out.
    harness.write("other:\n  task: jobs.health.ping\n  every: 1h\n" + PING)
    harness.at(30 * S, beat)
    harness.at(40 * S, beat)
    assert harness.sent("ping") == [10 * S, 20 * S, 30 * S, 40 * S]


def test_an_edited_job_starts_from_now_and_never_fires_the_past(harness: Harness) -> None:
    harness.write("report:\n  task: jobs.health.ping\n  every: 1h\n  misfire: run_all\n")
    harness.clock.now = T0 + 1 * S
    beat = harness.beat()
    harness.at(30 * M, beat)
    # Now every minute: its ticks +1m .. +30m are before the edit, neither run nor missed.
    harness.write(
        "report:\n  task: jobs.health.ping\n  every: 1m\n  misfire: run_all\n  priority: 7\n"
    )
    harness.at(30 * M + 5 * S, beat)
    assert harness.history("report") == []
    harness.at(31 * M, beat)
    assert harness.history("report") == [(31 * M, QUEUED, "schedule")]
    [message] = harness.broker.messages()
    assert message["properties"]["priority"] == 7


def test_an_invalid_edit_is_logged_and_the_last_valid_schedule_keeps_running(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness.write(PING)
    harness.clock.now = T0 + 1 * S
    beat = harness.beat()
    harness.at(10 * S, beat)
    harness.write(
        """
        ping:
          task: jobs.health.ping
          every: 10s
          overlap: allow
        added:
          task: jobs.health.ping
          cron: '*/0 * * * *'
        """
    )
    with caplog.at_level(logging.ERROR, logger="scheduler.watcher"):
        harness.at(15 * S, beat)
    assert "the last valid schedule keeps running" in caplog.text
    assert f"{harness.path}:11:" in caplog.text and "jobs.added.cron" in caplog.text
    harness.at(20 * S, beat)
    harness.at(1 * M, beat)
    assert harness.sent("ping") == [10 * S, 20 * S, 30 * S, 40 * S, 50 * S, 60 * S]
    assert harness.history("added") == []


def test_a_removed_job_stops(harness: Harness) -> None:
    harness.write(PING + "gone:\n  task: jobs.health.ping\n  every: 10s\n  overlap: allow\n")
    harness.clock.now = T0 + 1 * S
    beat = harness.beat()
    harness.at(10 * S, beat)
    harness.write(PING)
    harness.at(15 * S, beat)
    harness.at(20 * S, beat)
    harness.at(30 * S, beat)
    assert harness.history("gone") == [(10 * S, QUEUED, "schedule")]
    assert harness.sent("gone") == [10 * S]
    assert harness.sent("ping") == [10 * S, 20 * S, 30 * S]


def test_the_beat_keeps_the_stats_rollup_up_to_date(harness: Harness) -> None:
    harness.write("hourly:\n  task: jobs.health.ping\n  every: 10m\n")
    harness.clock.now = T0 + 1 * S
    beat = harness.beat()
    for minutes in range(10, 130, 10):
        harness.at(minutes * M, beat)
        harness.finish("hourly", minutes * M)
    # Summed up to the last settled quarter of an hour, in the beat's own thread. A refresh
    # starts only once the one before has ended: ticks come faster than that here.
    for minutes in (125, 130, 135, 140):
        harness.at(minutes * M, beat)
        deadline = time.monotonic() + 10
        while max(snapshot_times(harness), default=T0) < T0 + 105 * M:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        else:
            break
    assert max(snapshot_times(harness)) >= T0 + 105 * M  # floor_grid(T0 + 120 M - SETTLE_LAG)
    (stats,) = harness.store.stats(T0, now=T0 + 140 * M)
    (exact,) = harness.store.stats(T0, exact=True)
    assert (stats.runs, stats.succeeded) == (exact.runs, 12)
    assert stats.percentile_error == RELATIVE_ERROR  # from the snapshots


def snapshot_times(harness: Harness) -> list[datetime]:
    with harness.store.engine.connect() as conn:
        return rollup.snapshot_times(conn)


# --- refusing to start -------------------------------------------------------------------


def unstarted(tmp_path: Path, schedule: str, migrated: bool = True) -> Settings:
    """Settings for a beat that must stop before it touches the broker (none listens)."""
    url = f"sqlite:///{tmp_path / 'history.sqlite'}"
    if migrated:
        migrate(url)
    path = tmp_path / "schedules.yaml"
    path.write_text(schedule)
    return Settings.from_env(
        {
            "SCHEDULER_BROKER_URL": "redis://127.0.0.1:1/0",
            "SCHEDULER_DATABASE_URL": url,
            "SCHEDULER_SCHEDULE_FILE": str(path),
        }
    )


def test_beat_refuses_to_start_on_an_invalid_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = unstarted(
        tmp_path,
        "jobs:\n"
        "  a:\n    task: jobs.health.ping\n    cron: '61 * * * *'\n"
        "  b:\n    task: jobs.nope\n    every: 1m\n",
    )
    with pytest.raises(SystemExit) as exc_info:
        Beat(create_app(settings), clock=Clock(T0), settings=settings, max_interval=1)
    assert exc_info.value.code == 1
    err = capsys.readouterr().err
    path = settings.schedule_file
    assert f"{path}:4:" in err and "jobs.a.cron" in err
    assert f"{path}:6:" in err and "jobs.b.task" in err


def test_beat_refuses_to_start_on_a_database_that_is_not_migrated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = unstarted(tmp_path, PING, migrated=False)
    with pytest.raises(SystemExit) as exc_info:
        Beat(create_app(settings), clock=Clock(T0), settings=settings, max_interval=1)
    assert exc_info.value.code == 1
    assert "scheduler db upgrade" in capsys.readouterr().err
