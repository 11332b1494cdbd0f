"""Duplicate deliveries, the reaper and unsent claims, on every database dialect."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from scheduler.history.db import make_engine
from scheduler.history.models import Base, RunStatus, Trigger
from scheduler.history.schema import upgrade
from scheduler.history.store import HistoryStore, NewRun, run_id_for

T0 = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
TIMEOUT = timedelta(seconds=60)
W1, W2 = "celery@a:1", "celery@b:2"


def queued(store: HistoryStore, job: str = "job", trigger: Trigger = Trigger.SCHEDULE) -> str:
    run = NewRun(run_id_for(job, T0), job, "jobs.demo.slow", trigger, RunStatus.QUEUED, tick_at=T0)
    assert store.claim(run, T0)
    return run.id


def start(
    store: HistoryStore, run_id: str, process: str, at: datetime, redelivered: bool = False
) -> bool:
    return store.record_started(
        run_id,
        job_name="job",
        task_name="jobs.demo.slow",
        worker=process.split(":")[0],
        worker_process=process,
        redelivered=redelivered,
        at=at,
    )


def test_migrations_match_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    engine.dispose()
    assert diff == []


def test_a_second_copy_of_a_running_run_is_not_run(store: HistoryStore) -> None:
    run_id = queued(store)
    store.heartbeat(W1, "worker", "a", 1, T0)
    assert start(store, run_id, W1, T0) is True
    assert start(store, run_id, W2, T0 + timedelta(seconds=5)) is False  # W1 alive: duplicate
    run = store.get(run_id)
    assert run is not None and (run.attempts, run.worker_process) == (1, W1)


def test_a_redelivery_takes_the_run_over(store: HistoryStore) -> None:
    run_id = queued(store)
    store.heartbeat(W1, "worker", "a", 1, T0)
    start(store, run_id, W1, T0)
    assert start(store, run_id, W2, T0 + timedelta(seconds=5), redelivered=True) is True
    run = store.get(run_id)
    assert run is not None and (run.attempts, run.worker_process) == (2, W2)


def test_a_run_whose_worker_is_gone_is_taken_over(store: HistoryStore) -> None:
    run_id = queued(store)
    store.heartbeat(W1, "worker", "a", 1, T0)
    start(store, run_id, W1, T0)
    assert start(store, run_id, W2, T0 + timedelta(minutes=5)) is True  # W1 silent for 5 min


def test_finished_runs_are_never_run_again_but_lost_ones_are(store: HistoryStore) -> None:
    run_id = queued(store)
    start(store, run_id, W1, T0)
    store.record_finished(run_id, RunStatus.SUCCEEDED, T0 + timedelta(seconds=1))
    assert start(store, run_id, W2, T0 + timedelta(seconds=2), redelivered=True) is False
    other = queued(store, "other")
    start(store, other, W1, T0)
    store.reap(T0 + timedelta(minutes=5), TIMEOUT)  # W1 never heartbeat: lost
    assert store.get(other).status is RunStatus.LOST  # type: ignore[union-attr]
    assert start(store, other, W2, T0 + timedelta(minutes=6), redelivered=True) is True
    assert store.get(other).status is RunStatus.RUNNING  # type: ignore[union-attr]


def test_reaper_marks_lost_only_what_no_live_worker_runs(store: HistoryStore) -> None:
    ids = {
        name: queued(store, name) for name in ("dead", "listed", "forgotten", "recent", "overdue")
    }
    now = T0 + timedelta(minutes=10)
    store.heartbeat(W1, "worker", "a", 1, T0)  # then silent
    store.heartbeat(W2, "worker", "b", 2, now - timedelta(seconds=5), detail=f"x,{ids['listed']}")
    start(store, ids["dead"], W1, T0)
    start(store, ids["listed"], W2, T0)
    start(store, ids["forgotten"], W2, T0)
    start(store, ids["recent"], W2, now - timedelta(seconds=10))
    store.record_started(
        ids["overdue"],
        job_name="overdue",
        task_name="t",
        worker="b",
        at=T0,
        worker_process=W2,
        deadline_at=T0 + timedelta(seconds=30),
    )
    store.heartbeat(W2, "worker", "b", 2, now, detail=f"{ids['listed']},{ids['overdue']}")
    lost = dict(store.reap(now, TIMEOUT))
    assert set(lost) == {ids["dead"], ids["forgotten"], ids["overdue"]}
    assert lost[ids["dead"]] == "dead"
    assert store.get(ids["listed"]).status is RunStatus.RUNNING  # type: ignore[union-attr]
    assert store.get(ids["recent"]).status is RunStatus.RUNNING  # type: ignore[union-attr]
    reaped = store.get(ids["dead"])
    assert reaped is not None and reaped.error_type == "WorkerLost" and reaped.finished_at == now
    assert store.reap(now, TIMEOUT) == []


def test_unsent_lists_claims_long_due_and_never_marked_sent(store: HistoryStore) -> None:
    old = queued(store, "old")
    sent = queued(store, "sent")
    store.mark_enqueued(sent, T0)
    queued(store, "api", Trigger.API)
    # Claimed ahead of its tick (as beats do): not late until that tick has passed.
    ahead_tick = T0 + timedelta(seconds=60)
    ahead = NewRun(
        run_id_for("ahead", ahead_tick),
        "ahead",
        "t",
        Trigger.SCHEDULE,
        RunStatus.QUEUED,
        tick_at=ahead_tick,
    )
    store.claim(ahead, T0)
    # A manual run has no tick: its claim time counts.
    manual = NewRun("manual-1", "manual", "t", Trigger.MANUAL, RunStatus.QUEUED)
    store.claim(manual, T0 + timedelta(seconds=55))
    assert [r.id for r in store.unsent(T0 + timedelta(seconds=50))] == [old]
    later = {r.id for r in store.unsent(T0 + timedelta(seconds=61))}
    assert later == {old, ahead.id, "manual-1"}


def test_sent_not_started_lists_published_runs_still_queued(store: HistoryStore) -> None:
    waiting, started, unsent = queued(store, "waiting"), queued(store, "started"), queued(store)
    late = queued(store, "late")
    manual = NewRun("manual-1", "manual", "t", Trigger.MANUAL, RunStatus.QUEUED)
    store.claim(manual, T0)
    for run_id in (waiting, started, manual.id):
        store.mark_enqueued(run_id, T0)
    store.mark_enqueued(late, T0 + timedelta(seconds=5))
    start(store, started, W1, T0)
    assert unsent  # claimed, never published: `unsent` is where that one is found
    found = store.sent_not_started(T0 + timedelta(seconds=1))
    assert sorted(r.id for r in found) == sorted([waiting, manual.id])


def test_runs_sent_but_never_started_become_lost_and_can_still_run(store: HistoryStore) -> None:
    stale, fresh = queued(store, "stale"), queued(store, "fresh")
    store.mark_enqueued(stale, T0)
    store.mark_enqueued(fresh, T0 + timedelta(minutes=59))
    now = T0 + timedelta(hours=1, seconds=1)
    assert store.reap_queued(now, timedelta(hours=1)) == [(stale, "stale")]
    row = store.get(stale)
    assert row is not None and (row.status, row.error_type) == (RunStatus.LOST, "NeverStarted")
    assert store.active_jobs(["stale", "fresh"]) == {"fresh"}  # no longer blocks its job
    assert start(store, stale, W1, now) is True  # the message turned up after all
