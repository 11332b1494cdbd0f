"""`stats` from the rollup (rollup.py, stats.py): exact counts, last runs and statuses, and
p50/p95 within their bound, whatever happens to runs after their time was summed up."""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Float, func, insert, literal, null, select, update

from scheduler.history import rollup, summing
from scheduler.history.durations import RELATIVE_ERROR, bucket_of
from scheduler.history.models import RunStatus, Trigger
from scheduler.history.stats import JobStats
from scheduler.history.store import RUNS, HistoryStore, NewRun
from tests.history.runs_data import NOW, expected_stats, random_rows


def assert_matches(got: list[JobStats], expected: list[JobStats], rollup_used: bool = True) -> None:
    """Counts and last runs equal; p50/p95 within the bound that `stats` states."""
    assert [g.job_name for g in got] == [e.job_name for e in expected]
    for g, e in zip(got, expected, strict=True):
        assert (g.runs, g.succeeded, g.failed, g.last_run_at, g.last_status) == (
            e.runs,
            e.succeeded,
            e.failed,
            e.last_run_at,
            e.last_status,
        ), g.job_name
        assert g.percentile_error == (RELATIVE_ERROR if rollup_used else 0.0)
        for shown, exact in ((g.p50_s, e.p50_s), (g.p95_s, e.p95_s)):
            if exact is None or shown is None:
                assert shown is exact is None, g.job_name
            elif exact == 0:
                assert shown == 0.0, g.job_name
            else:
                assert abs(shown - exact) <= RELATIVE_ERROR * exact * (1 + 1e-9), g.job_name


def snapshots(store: HistoryStore) -> list[datetime]:
    with store.engine.connect() as conn:
        return rollup.snapshot_times(conn)


def insert_runs(store: HistoryStore, rows: list[dict[str, Any]]) -> None:
    with store.engine.begin() as conn:
        conn.execute(insert(RUNS), rows)


def test_stats_from_snapshots_match_their_definition(store: HistoryStore) -> None:
    rows = random_rows(random.Random(7), 1500)  # every 700 s for 12 days, up to NOW + 2 days
    insert_runs(store, rows)
    now = max(r["created_at"] for r in rows) + timedelta(minutes=40)
    for since in (
        NOW - timedelta(days=11),  # before the first run
        NOW - timedelta(days=7, minutes=17),
        NOW - timedelta(days=3, hours=5, minutes=50),  # between two grid instants
        NOW - timedelta(days=3),  # on one
        NOW + timedelta(days=1, hours=23),  # within the hour before the latest snapshot
    ):
        assert_matches(store.stats(since, now=now), expected_stats(rows, since))
    assert snapshots(store)
    # A window that starts after the latest snapshot reads every run: exact.
    since = now - timedelta(minutes=20)
    assert store.stats(since, now=now) == expected_stats(rows, since)


def test_later_stats_take_the_snapshots_they_need_and_still_match(store: HistoryStore) -> None:
    rng = random.Random(8)
    rows = random_rows(rng, 600, start=NOW - timedelta(days=5))
    insert_runs(store, rows)
    now = NOW
    store.stats(now - timedelta(days=2), now=now)
    for hours in (1, 3, 26, 50):  # the runs go on; the window moves with them
        later = NOW + timedelta(hours=hours)
        more = random_rows(rng, 40, start=now, step_s=int((later - now).total_seconds() / 40))
        for n, row in enumerate(more):
            row["id"] = f"run-{hours}-{n}"
        insert_runs(store, more)
        rows += more
        now = later
        since = now - timedelta(days=2)
        assert_matches(store.stats(since, now=now), expected_stats(rows, since))


def start_run(store: HistoryStore, job: str, run_id: str, at: datetime, process: str) -> None:
    store.claim(
        NewRun(
            id=run_id, job_name=job, task_name="t", trigger=Trigger.API, status=RunStatus.QUEUED
        ),
        at,
    )
    assert store.record_started(
        run_id, job_name=job, task_name="t", worker="w", worker_process=process, at=at
    )


def test_runs_that_settle_after_their_time_was_summed_are_counted_once(
    store: HistoryStore,
) -> None:
    t = NOW - timedelta(days=1)
    store.heartbeat("alive:1", "worker", "h", 1, t, detail="slow")
    start_run(store, "job", "slow", t, "alive:1")  # runs for hours
    start_run(store, "job", "reaped", t + timedelta(seconds=1), "gone:2")
    start_run(store, "job", "retried", t + timedelta(seconds=2), "alive:1")
    store.record_finished("retried", RunStatus.RETRYING, t + timedelta(seconds=3))
    start_run(store, "job", "done", t + timedelta(seconds=4), "alive:1")
    store.record_finished("done", RunStatus.SUCCEEDED, t + timedelta(seconds=5))
    # A worker that stopped: its run is reaped `lost`, a failure for now.
    later = t + timedelta(hours=3)
    store.heartbeat("alive:1", "worker", "h", 1, later, detail="slow")
    assert store.reap(later, timedelta(minutes=5)) == [("reaped", "job")]
    (first,) = store.stats(t - timedelta(hours=1), now=later)
    assert (first.runs, first.succeeded, first.failed) == (4, 1, 1)
    assert first.percentile_error == RELATIVE_ERROR  # summed up, all but `done` pending
    # Then each settles, hours after its time was summed: counted once, as it ends.
    end = later + timedelta(hours=2)
    store.record_finished("slow", RunStatus.SUCCEEDED, end - timedelta(minutes=30))
    assert store.record_started(
        "reaped",
        job_name="job",
        task_name="t",
        worker="w",
        worker_process="alive:1",
        at=end - timedelta(minutes=20),
        redelivered=True,
    )
    store.record_finished("reaped", RunStatus.SUCCEEDED, end - timedelta(minutes=19))
    assert store.record_started(
        "retried",
        job_name="job",
        task_name="t",
        worker="w",
        worker_process="alive:1",
        at=end - timedelta(minutes=10),
    )
    store.record_finished("retried", RunStatus.FAILED, end - timedelta(minutes=8))
    got = store.stats(t - timedelta(hours=1), now=end)
    exact = store.stats(t - timedelta(hours=1), exact=True)
    assert_matches(got, exact)
    assert (got[0].runs, got[0].succeeded, got[0].failed) == (4, 3, 1)
    assert got[0].p95_s == pytest.approx(4.5 * 3600, rel=RELATIVE_ERROR)  # `slow`


def test_runs_created_at_the_same_instant_are_each_counted_once(store: HistoryStore) -> None:
    # A catch-up claims a job's missed ticks in one transaction: one created_at for all.
    t = NOW - timedelta(days=1)
    ticks = [
        NewRun(
            id=f"tick-{n}",
            job_name="job",
            task_name="t",
            trigger=Trigger.CATCHUP,
            status=RunStatus.QUEUED,
            tick_at=t - timedelta(minutes=n),
        )
        for n in range(3)
    ]
    assert store.claim_many(ticks, t) == {"tick-0", "tick-1", "tick-2"}
    since = t - timedelta(hours=1)
    later = t + timedelta(hours=3)
    assert [s.runs for s in store.stats(since, now=later)] == [3]  # summed up: all pending
    store.record_finished("tick-1", RunStatus.SUCCEEDED, later, started_at=later)
    got = store.stats(since, now=later + timedelta(minutes=5))
    assert_matches(got, store.stats(since, exact=True))
    assert (got[0].runs, got[0].succeeded) == (3, 1)


def test_purge_keeps_the_rollup_right(store: HistoryStore) -> None:
    rows = random_rows(random.Random(9), 1200)
    insert_runs(store, rows)
    now = NOW + timedelta(hours=1)
    store.stats(NOW - timedelta(days=6), now=now)  # snapshots across the cut to come
    store.refresh_stats(now)
    cut = NOW - timedelta(days=4, hours=3)
    final = {s for s in RunStatus} - {RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.RETRYING}
    store.purge(cut)
    kept = [r for r in rows if r["created_at"] >= cut or r["status"] not in final]
    assert min(snapshots(store)) >= cut
    for since in (NOW - timedelta(days=6), NOW - timedelta(days=4), NOW - timedelta(days=2)):
        assert_matches(store.stats(since, now=now), expected_stats(kept, since))


def test_a_snapshot_is_taken_once_and_old_ones_are_pruned(store: HistoryStore) -> None:
    insert_runs(store, random_rows(random.Random(10), 300, start=NOW - timedelta(days=2)))
    assert store.refresh_stats(NOW) > 0
    assert store.refresh_stats(NOW) == 0
    at = rollup.floor_grid(NOW - timedelta(hours=20))
    assert rollup.build(store.engine, at, NOW) is True
    assert rollup.build(store.engine, at, NOW) is False
    taken = snapshots(store)
    store.refresh_stats(NOW + rollup.KEEP_BUILT + timedelta(minutes=1))
    left = set(snapshots(store))
    assert at not in left  # unused, built long ago
    assert {s for s in taken if s == s.replace(hour=0, minute=0)} <= left  # midnights stay


def test_totals_that_do_not_add_up_give_way_to_every_run(
    store: HistoryStore, caplog: pytest.LogCaptureFixture
) -> None:
    rows = random_rows(random.Random(11), 800)
    insert_runs(store, rows)
    now = NOW + timedelta(hours=1)
    since = NOW - timedelta(days=5)
    store.stats(since, now=now)
    head = min(snapshots(store), key=lambda at: abs(at - since))
    with store.engine.begin() as conn:  # more runs before the window than there were
        conn.execute(
            update(summing.TOTALS)
            .where(summing.TOTALS.c.at == head)
            .values(runs=summing.TOTALS.c.runs + 10_000)
        )
    with caplog.at_level(logging.WARNING, logger="scheduler.history.stats"):
        got = store.stats(since, now=now)
    assert got == expected_stats(rows, since)  # exact percentiles: every run was read
    assert "stats rollup inconsistent" in caplog.text


@pytest.mark.parametrize("seed", range(3))
def test_the_database_buckets_durations_as_python_does(store: HistoryStore, seed: int) -> None:
    rng = random.Random(seed)
    durations = [0.0, -1.0, 1e-6, 2e-6, 0.999, 1.0, 600.0, 86400.5]
    durations += [10 ** rng.uniform(-5, 6) for _ in range(200)]
    with store.engine.connect() as conn:
        got = [conn.execute(select(summing.bucket(literal(d)))).scalar() for d in durations]
    assert got == [bucket_of(d) for d in durations]
    with store.engine.connect() as conn:
        assert conn.execute(select(summing.bucket(null().cast(Float)))).scalar() is None
        assert conn.execute(select(func.count()).select_from(summing.LOCK)).scalar() == 1
