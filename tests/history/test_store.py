from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scheduler.history.db import make_engine
from scheduler.history.models import RunStatus, Trigger
from scheduler.history.revision import HEAD_REVISION, SchemaOutOfDate, stored_revision
from scheduler.history.schema import current_revision, head_revision, require_current, upgrade
from scheduler.history.store import (
    RESULT_LIMIT,
    HistoryStore,
    NewRun,
    RunFilter,
    run_id_for,
)

T0 = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)


def tick_run(job: str, tick_at: datetime, status: RunStatus = RunStatus.QUEUED) -> NewRun:
    return NewRun(
        id=run_id_for(job, tick_at),
        job_name=job,
        task_name="jobs.health.ping",
        trigger=Trigger.SCHEDULE,
        status=status,
        tick_at=tick_at,
        kwargs={"password": "hunter2", "user": "ann"},
    )


def test_migrations_bring_an_empty_database_to_head(database_url: str) -> None:
    engine = make_engine(database_url)
    assert current_revision(engine) is None
    assert stored_revision(engine) is None
    with pytest.raises(SchemaOutOfDate, match="at revision none, code needs"):
        require_current(engine)
    assert upgrade(engine) == (None, head_revision())
    require_current(engine)
    assert stored_revision(engine) == current_revision(engine) == HEAD_REVISION
    assert upgrade(engine) == (head_revision(), head_revision())  # idempotent
    engine.dispose()


def test_the_start_up_check_knows_alembics_newest_migration() -> None:
    # Beat and workers compare against HEAD_REVISION without importing Alembic: a new
    # migration must move it, or every process would refuse the upgraded database.
    assert head_revision() == HEAD_REVISION


def test_run_ids_are_deterministic_per_job_and_tick() -> None:
    assert run_id_for("a", T0) == run_id_for("a", T0.astimezone(UTC))
    assert run_id_for("a", T0) != run_id_for("b", T0)
    assert run_id_for("a", T0) != run_id_for("a", T0 + timedelta(seconds=1))


def test_a_tick_is_claimed_once(store: HistoryStore) -> None:
    assert store.claim(tick_run("ping", T0), T0) is True
    assert store.claim(tick_run("ping", T0), T0) is False  # a second beat loses
    assert store.claim(tick_run("ping", T0 + timedelta(minutes=1)), T0) is True
    runs = store.runs(RunFilter(job_name="ping"))
    assert len(runs) == 2
    assert store.last_ticks() == {"ping": T0 + timedelta(minutes=1)}


def test_job_state_keeps_the_latest_tick_whatever_the_claim_order(store: HistoryStore) -> None:
    store.claim(tick_run("ping", T0 + timedelta(minutes=5)), T0)
    store.claim(tick_run("ping", T0), T0)
    assert store.last_ticks()["ping"] == T0 + timedelta(minutes=5)


def test_secret_arguments_are_redacted(store: HistoryStore) -> None:
    store.claim(tick_run("ping", T0), T0)
    (run,) = store.runs(RunFilter())
    assert run.kwargs == {"password": "***", "user": "ann"}


def test_lifecycle_started_then_finished(store: HistoryStore) -> None:
    run_id = run_id_for("ping", T0)
    store.claim(tick_run("ping", T0), T0)
    assert store.active_jobs(["ping"]) == {"ping"}
    store.mark_enqueued(run_id, T0)
    store.record_started(
        run_id,
        job_name="ping",
        task_name="jobs.health.ping",
        worker="w1",
        at=T0 + timedelta(seconds=1),
    )
    store.record_finished(
        run_id, RunStatus.SUCCEEDED, T0 + timedelta(seconds=3.5), result={"ok": True}
    )
    run = store.get(run_id)
    assert run is not None
    assert run.status is RunStatus.SUCCEEDED
    assert run.attempts == 1
    assert run.worker == "w1"
    assert run.tick_at == T0
    assert run.enqueued_at == T0
    assert run.duration_s == pytest.approx(2.5)
    assert run.result == {"ok": True}
    assert store.active_jobs(["ping"]) == set()


def test_many_outcomes_in_one_round_trip(store: HistoryStore) -> None:
    started = T0 + timedelta(seconds=1)
    ids = []
    for job in ("a", "b"):
        store.claim(tick_run(job, T0), T0)
        ids.append(run_id_for(job, T0))
        store.record_started(ids[-1], job_name=job, task_name="t", worker="w", at=started)
    store.record_finished_many(
        [
            {
                "run_id": ids[0],
                "status": RunStatus.SUCCEEDED,
                "at": T0 + timedelta(seconds=2),
                "started_at": started,
                "result": [1],
            },
            {
                "run_id": ids[1],
                "status": RunStatus.FAILED,
                "at": T0 + timedelta(seconds=4),
                "started_at": started,
                "error_type": "ValueError",
                "error_message": "bad",
            },
        ]
    )
    a, b = store.get(ids[0]), store.get(ids[1])
    assert a is not None and b is not None
    assert (a.status, a.result, a.duration_s) == (RunStatus.SUCCEEDED, [1], 1.0)
    assert (b.status, b.error_type, b.error_message, b.duration_s) == (
        RunStatus.FAILED,
        "ValueError",
        "bad",
        3.0,
    )


def test_an_error_text_with_a_nul_character_is_kept(store: HistoryStore) -> None:
    """PostgreSQL refuses NUL in text; an exception's message can hold one."""
    started = T0 + timedelta(seconds=1)
    for job in ("a", "b"):
        store.claim(tick_run(job, T0), T0)
        run_id = run_id_for(job, T0)
        store.record_started(run_id, job_name=job, task_name="t", worker="w", at=started)
    failed = {"status": RunStatus.FAILED, "at": T0 + timedelta(seconds=2), "started_at": started}
    store.record_finished_many(
        [
            {"run_id": run_id_for("a", T0), "error_message": "bad\x00byte", **failed},
            {"run_id": run_id_for("b", T0), "traceback": "line\x00", **failed},
        ]
    )
    a, b = store.get(run_id_for("a", T0)), store.get(run_id_for("b", T0))
    assert a is not None and b is not None
    assert (a.status, a.error_message) == (RunStatus.FAILED, "bad\ufffdbyte")
    assert (b.status, b.traceback) == (RunStatus.FAILED, "line\ufffd")


def test_redelivery_counts_attempts_and_unknown_runs_are_created(store: HistoryStore) -> None:
    store.claim(tick_run("ping", T0), T0)
    run_id = run_id_for("ping", T0)
    for _ in range(2):
        store.record_started(run_id, job_name="ping", task_name="t", worker="w", at=T0)
    assert store.get(run_id).attempts == 2  # type: ignore[union-attr]
    store.record_started("foreign-id", job_name="jobs.x", task_name="jobs.x", worker="w", at=T0)
    foreign = store.get("foreign-id")
    assert foreign is not None
    assert (foreign.trigger, foreign.status, foreign.attempts) == (
        Trigger.API,
        RunStatus.RUNNING,
        1,
    )


def test_a_message_not_published_through_us_starts_with_one_insert_and_same_rules(
    store: HistoryStore,
) -> None:
    kw = {"job_name": "jobs.x", "task_name": "jobs.x", "worker": "w", "at": T0, "known": False}
    assert store.record_started("new", **kw) is True  # type: ignore[arg-type]
    assert store.get("new").trigger == Trigger.API  # type: ignore[union-attr]
    # Its row exists after all (claimed by a beat): the INSERT is ignored, the UPDATE starts it.
    store.claim(tick_run("ping", T0), T0)
    claimed = run_id_for("ping", T0)
    assert store.record_started(claimed, **kw) is True  # type: ignore[arg-type]
    run = store.get(claimed)
    assert run is not None
    assert (run.trigger, run.status, run.attempts) == (Trigger.SCHEDULE, RunStatus.RUNNING, 1)
    store.record_finished(claimed, RunStatus.SUCCEEDED, T0)
    assert store.record_started(claimed, **kw) is False  # a copy of a finished run


def test_failure_keeps_error_and_huge_results_are_capped(store: HistoryStore) -> None:
    store.claim(tick_run("a", T0), T0)
    store.claim(tick_run("b", T0), T0)
    store.record_finished(
        run_id_for("a", T0),
        RunStatus.FAILED,
        T0,
        error_type="ValueError",
        error_message="bad",
        traceback="Traceback...",
    )
    store.record_finished(
        run_id_for("b", T0), RunStatus.SUCCEEDED, T0, result="x" * (RESULT_LIMIT * 2)
    )
    failed = store.get(run_id_for("a", T0))
    assert failed is not None
    assert (failed.status, failed.error_type, failed.error_message) == (
        RunStatus.FAILED,
        "ValueError",
        "bad",
    )
    capped = store.get(run_id_for("b", T0))
    assert capped is not None
    assert capped.result["truncated"] is True
    assert capped.result["bytes"] > RESULT_LIMIT


def test_filters_newest_first_and_limit(store: HistoryStore) -> None:
    for i in range(5):
        at = T0 + timedelta(minutes=i)
        store.claim(
            tick_run("a" if i % 2 else "b", at, RunStatus.MISSED if i == 4 else RunStatus.QUEUED),
            at,
        )
    assert [r.tick_at for r in store.runs(RunFilter(limit=2))] == [
        T0 + timedelta(minutes=4),
        T0 + timedelta(minutes=3),
    ]
    assert {r.job_name for r in store.runs(RunFilter(job_name="a"))} == {"a"}
    assert [r.status for r in store.runs(RunFilter(status=RunStatus.MISSED))] == [RunStatus.MISSED]
    assert len(store.runs(RunFilter(since=T0 + timedelta(minutes=3)))) == 2
    assert len(store.runs(RunFilter(until=T0 + timedelta(minutes=1)))) == 1


def test_stats_and_purge(store: HistoryStore) -> None:
    for i, status in enumerate(
        [RunStatus.SUCCEEDED, RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.QUEUED]
    ):
        at = T0 + timedelta(minutes=i)
        run_id = run_id_for("a", at)
        store.claim(tick_run("a", at), at)
        if status is not RunStatus.QUEUED:
            store.record_started(run_id, job_name="a", task_name="t", worker="w", at=at)
            store.record_finished(run_id, status, at + timedelta(seconds=i + 1))
    (stats,) = store.stats(since=None)
    assert (stats.runs, stats.succeeded, stats.failed) == (4, 2, 1)
    assert stats.success_rate == pytest.approx(2 / 3)
    assert stats.p50_s == pytest.approx(2.0)
    assert stats.p95_s == pytest.approx(3.0)
    assert stats.last_status is RunStatus.QUEUED
    assert store.purge(before=T0 + timedelta(minutes=10)) == 3  # the queued run stays
    assert [r.status for r in store.runs(RunFilter())] == [RunStatus.QUEUED]


def test_heartbeats(store: HistoryStore) -> None:
    store.heartbeat("beat@h:1", "beat", "h", 1, T0)
    store.heartbeat("beat@h:1", "beat", "h", 1, T0 + timedelta(seconds=5))
    store.heartbeat("worker@h:2", "worker", "h", 2, T0 - timedelta(minutes=5))
    assert [
        b.id for b in store.alive("beat", T0 + timedelta(seconds=10), timedelta(seconds=30))
    ] == ["beat@h:1"]
    assert store.alive("worker", T0, timedelta(seconds=30)) == []


def test_claim_many_returns_only_the_new_ticks_and_advances_each_job(store: HistoryStore) -> None:
    store.claim(tick_run("a", T0), T0)
    batch = [tick_run("a", T0), tick_run("a", T0 + timedelta(minutes=1)), tick_run("b", T0)]
    claimed = store.claim_many(batch, T0)
    assert claimed == {run_id_for("a", T0 + timedelta(minutes=1)), run_id_for("b", T0)}
    assert store.claim_many(batch, T0) == set()  # a second beat gets nothing
    assert store.last_ticks() == {"a": T0 + timedelta(minutes=1), "b": T0}
    store.mark_enqueued_many(sorted(claimed), T0 + timedelta(seconds=1))
    assert {r.id for r in store.runs(RunFilter()) if r.enqueued_at is not None} == claimed


def test_unclaim_deletes_only_unsent_runs_and_moves_the_cursor_back(store: HistoryStore) -> None:
    ticks = [T0 + timedelta(minutes=n) for n in (1, 2, 3)]
    store.claim_many([tick_run("a", at) for at in ticks], T0)
    sent, *unsent = (run_id_for("a", at) for at in ticks)
    store.mark_enqueued_many([sent], T0 + timedelta(minutes=1))
    assert store.unclaim([sent, *unsent, "no-such-run"], T0 + timedelta(seconds=70)) == set(unsent)
    assert [r.id for r in store.runs(RunFilter())] == [sent]
    assert store.last_ticks() == {"a": T0 + timedelta(seconds=70)}
    assert store.unclaim(unsent, T0) == set()


def test_active_jobs_finds_queued_and_running_runs_only(store: HistoryStore) -> None:
    store.claim(tick_run("queued", T0), T0)
    store.claim(tick_run("done", T0), T0)
    store.record_finished(run_id_for("done", T0), RunStatus.SUCCEEDED, T0)
    store.claim(tick_run("missed", T0, RunStatus.MISSED), T0)
    assert store.active_jobs(["queued", "done", "missed", "unknown"]) == {"queued"}
