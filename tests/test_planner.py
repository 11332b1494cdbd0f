"""The planner: misfire, catch-up cap, overlap and jitter decided from data (SPEC §5).

Pure tests: every `now` is a literal, nothing reads the clock or touches a file.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from scheduler.planner import (
    CATCHUP_LIMIT,
    MISSED_RECORD_LIMIT,
    Action,
    ActionKind,
    Plan,
    due_at,
    jitter_for,
    next_due,
    plan,
)
from scheduler.spec import JobSpec, Misfire, Overlap
from scheduler.timeengine.cron import parse_cron
from scheduler.timeengine.ticks import AtSchedule, CronSchedule, EverySchedule

UTC_ZONE = ZoneInfo("UTC")
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # on the grid of every epoch-anchored `every`
SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)


def every(interval: timedelta, name: str = "job", **fields: Any) -> JobSpec:
    return JobSpec(
        name=name, task="jobs.health.ping", schedule=EverySchedule(interval), tz=UTC_ZONE, **fields
    )


def cron(expr: str, name: str = "job", **fields: Any) -> JobSpec:
    return JobSpec(
        name=name,
        task="jobs.health.ping",
        schedule=CronSchedule(parse_cron(expr, name), UTC_ZONE),
        tz=UTC_ZONE,
        **fields,
    )


def codes(result: Plan) -> str:
    """One letter per action: C catch-up send, S send, M missed, K skipped."""
    letter = {ActionKind.MISSED: "M", ActionKind.SKIPPED: "K"}
    return "".join(
        ("C" if a.catchup else "S") if a.kind is ActionKind.SEND else letter[a.kind]
        for a in result.actions
    )


def ticks(result: Plan) -> list[datetime]:
    return [a.tick_at for a in result.actions]


# --- what is due at all -----------------------------------------------------------------


def test_a_job_never_seen_before_has_no_missed_ticks() -> None:
    result = plan(every(MINUTE), None, T0 + DAY, has_active_run=False)
    assert result == Plan((), None)


def test_a_disabled_job_gets_no_actions_however_much_is_due() -> None:
    result = plan(every(MINUTE, enabled=False), T0, T0 + DAY, has_active_run=False)
    assert result.actions == ()
    assert result.newest_tick_at == T0


def test_nothing_is_due_before_the_next_tick() -> None:
    result = plan(every(MINUTE), T0, T0 + 59 * SECOND, has_active_run=False)
    assert result == Plan((), T0)


def test_a_tick_is_sent_at_its_instant() -> None:
    result = plan(every(MINUTE), T0, T0 + MINUTE, has_active_run=False)
    assert result == Plan((Action(ActionKind.SEND, T0 + MINUTE),), T0 + MINUTE)


def test_ticks_outside_the_start_end_window_are_not_planned() -> None:
    job = every(MINUTE, start_at=T0 + 3 * MINUTE, end_at=T0 + 5 * MINUTE)
    result = plan(job, T0, T0 + 10 * MINUTE, has_active_run=False)
    assert ticks(result) == [T0 + 3 * MINUTE, T0 + 4 * MINUTE]


def test_a_one_shot_at_job_fires_once() -> None:
    job = JobSpec(name="launch", task="jobs.health.ping", schedule=AtSchedule(T0), tz=UTC_ZONE)
    first = plan(job, T0 - DAY, T0 + SECOND, has_active_run=False)
    assert codes(first) == "S"
    assert first.newest_tick_at == T0
    assert plan(job, T0, T0 + DAY, has_active_run=False).actions == ()


# --- misfire policies after downtime -------------------------------------------------------


def downtime(kind: str, misfire: Misfire) -> tuple[JobSpec, datetime, datetime, list[datetime]]:
    """A job, its last tick before beat went down, `now` at restart, and the ticks due since.

    Overlap is `allow`, so that only the misfire policy shapes the plan.
    """
    if kind == "seconds":
        # `every 10s`, down 95 s: ticks +10..+90 s; +10, +20, +30 s are over 60 s late.
        job = every(10 * SECOND, misfire=misfire, overlap=Overlap.ALLOW)
        return job, T0, T0 + 95 * SECOND, [T0 + k * 10 * SECOND for k in range(1, 10)]
    if kind == "minutes":
        # `every 1m`, down 30.5 min: ticks +1..+30 min; only +30 (30 s ago) is on time.
        job = every(MINUTE, misfire=misfire, overlap=Overlap.ALLOW)
        return job, T0, T0 + 30 * MINUTE + 30 * SECOND, [T0 + k * MINUTE for k in range(1, 31)]
    # `0 2 * * *`, down from 2 March 02:00 to 5 March 12:00: three ticks, all late.
    job = cron("0 2 * * *", misfire=misfire, overlap=Overlap.ALLOW)
    last_tick_at, now = datetime(2026, 3, 2, 2, 0, tzinfo=UTC), datetime(2026, 3, 5, 12, tzinfo=UTC)
    return job, last_tick_at, now, [datetime(2026, 3, d, 2, 0, tzinfo=UTC) for d in (3, 4, 5)]


@pytest.mark.parametrize(
    ("kind", "misfire", "expected"),
    [
        ("seconds", Misfire.SKIP, "MMM" + "S" * 6),
        # run_once catches up only when no tick is on time: an on-time run is the one run.
        ("seconds", Misfire.RUN_ONCE, "MMM" + "S" * 6),
        ("seconds", Misfire.RUN_ALL, "CCC" + "S" * 6),
        ("minutes", Misfire.SKIP, "M" * 29 + "S"),
        ("minutes", Misfire.RUN_ONCE, "M" * 29 + "S"),
        ("minutes", Misfire.RUN_ALL, "C" * 29 + "S"),
        ("days", Misfire.SKIP, "MMM"),
        ("days", Misfire.RUN_ONCE, "MMC"),
        ("days", Misfire.RUN_ALL, "CCC"),
    ],
)
def test_misfire_policy_after_downtime(kind: str, misfire: Misfire, expected: str) -> None:
    job, last_tick_at, now, due = downtime(kind, misfire)
    result = plan(job, last_tick_at, now, has_active_run=False)
    assert codes(result) == expected
    assert ticks(result) == due  # every tick once, oldest first
    assert result.newest_tick_at == due[-1]
    assert result.uncounted_missed == 0


def test_run_once_is_the_default_policy() -> None:
    job = every(2 * MINUTE, overlap=Overlap.ALLOW)
    result = plan(job, T0, T0 + 10 * MINUTE + 61 * SECOND, has_active_run=False)
    assert codes(result) == "MMMMC"  # +2..+10 min all over 60 s late: the newest is caught up


def test_missed_ticks_are_actions_of_their_own_not_catch_ups() -> None:
    result = plan(every(MINUTE, misfire=Misfire.SKIP), T0, T0 + 10 * MINUTE + 61 * SECOND, False)
    missed = [a for a in result.actions if a.kind is ActionKind.MISSED]
    assert [a.tick_at for a in missed] == [T0 + k * MINUTE for k in range(1, 11)]
    assert not any(a.catchup for a in missed)
    assert codes(result) == "M" * 10 + "S"  # +11 min is 1 s old
    assert result.newest_tick_at == T0 + 11 * MINUTE


def test_run_all_runs_at_most_100_missed_ticks_per_catch_up() -> None:
    # `every 1m`, down 300.5 min: 299 late ticks and one on time. The newest 100 late ticks
    # run; the 199 older ones are recorded as missed.
    job = every(MINUTE, misfire=Misfire.RUN_ALL, overlap=Overlap.ALLOW)
    result = plan(job, T0, T0 + 300 * MINUTE + 30 * SECOND, has_active_run=False)
    assert CATCHUP_LIMIT == 100
    assert codes(result) == "M" * 199 + "C" * 100 + "S"
    catch_ups = [a.tick_at for a in result.actions if a.catchup]
    assert catch_ups == [T0 + k * MINUTE for k in range(200, 300)]


def test_run_all_runs_exactly_100_missed_ticks_without_dropping_any() -> None:
    job = every(MINUTE, misfire=Misfire.RUN_ALL, overlap=Overlap.ALLOW)
    result = plan(job, T0, T0 + 100 * MINUTE + 61 * SECOND, has_active_run=False)
    assert codes(result) == "C" * 100 + "S"


# --- the grace boundary --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("late_by", "misfire", "expected"),
    [
        (60 * SECOND, Misfire.RUN_ONCE, "S"),  # exactly at misfire_grace: still on time
        (60 * SECOND, Misfire.SKIP, "S"),
        (60 * SECOND + timedelta(microseconds=1), Misfire.RUN_ONCE, "C"),
        (60 * SECOND + timedelta(microseconds=1), Misfire.SKIP, "M"),
    ],
)
def test_default_grace_is_60_seconds_inclusive(
    late_by: timedelta, misfire: Misfire, expected: str
) -> None:
    job = every(timedelta(hours=1), misfire=misfire)
    result = plan(job, T0, T0 + timedelta(hours=1) + late_by, has_active_run=False)
    assert codes(result) == expected


def test_grace_is_per_job_and_counts_from_the_jittered_due_time() -> None:
    job = every(timedelta(hours=1), misfire=Misfire.SKIP, misfire_grace=5 * MINUTE)
    tick_at = T0 + timedelta(hours=1)
    assert codes(plan(job, T0, tick_at + 5 * MINUTE, False)) == "S"
    assert codes(plan(job, T0, tick_at + 5 * MINUTE + SECOND, False)) == "M"
    jittered = every(timedelta(hours=1), misfire=Misfire.SKIP, jitter=30 * MINUTE)
    delay = jitter_for(jittered, tick_at)
    assert delay > 60 * SECOND  # so the tick instant itself is well past the grace
    assert codes(plan(jittered, T0, tick_at + delay + 60 * SECOND, False)) == "S"
    assert codes(plan(jittered, T0, tick_at + delay + 61 * SECOND, False)) == "M"


# --- overlap -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overlap", "has_active_run", "expected"),
    [
        (Overlap.FORBID, False, "SKK"),  # only the first send of the plan goes
        (Overlap.FORBID, True, "KKK"),  # a run is still queued or running
        (Overlap.ALLOW, False, "SSS"),
        (Overlap.ALLOW, True, "SSS"),
    ],
)
def test_overlap(overlap: Overlap, has_active_run: bool, expected: str) -> None:
    # Three ticks due within the grace (a beat that stalled for 35 s).
    result = plan(every(10 * SECOND, overlap=overlap), T0, T0 + 35 * SECOND, has_active_run)
    assert codes(result) == expected
    assert ticks(result) == [T0 + 10 * SECOND, T0 + 20 * SECOND, T0 + 30 * SECOND]


def test_overlap_forbid_is_the_default_and_applies_to_a_single_tick() -> None:
    job = every(MINUTE)
    assert codes(plan(job, T0, T0 + MINUTE, has_active_run=True)) == "K"
    assert codes(plan(job, T0, T0 + MINUTE, has_active_run=False)) == "S"


def test_overlap_forbid_lets_one_catch_up_through_and_skips_the_rest() -> None:
    job = every(MINUTE, misfire=Misfire.RUN_ALL)
    result = plan(job, T0, T0 + 5 * MINUTE, has_active_run=False)
    assert codes(result) == "CKKKK"
    assert [a.catchup for a in result.actions] == [True, True, True, False, False]
    assert codes(plan(job, T0, T0 + 5 * MINUTE, has_active_run=True)) == "KKKKK"


def test_overlap_forbid_never_turns_missed_ticks_into_skipped_ones() -> None:
    job = every(MINUTE, misfire=Misfire.SKIP)
    assert codes(plan(job, T0, T0 + 3 * MINUTE, has_active_run=True)) == "MKK"


# --- jitter --------------------------------------------------------------------------------


def test_jitter_is_the_same_on_every_process() -> None:
    # A literal, not a recomputation: PYTHONHASHSEED, process or host must not change it.
    job = every(MINUTE, name="report", jitter=30 * SECOND)
    assert jitter_for(job, T0) == timedelta(seconds=27, microseconds=218014)
    assert jitter_for(job, T0 + MINUTE) == timedelta(seconds=3, microseconds=765722)
    assert jitter_for(job, T0.astimezone(ZoneInfo("Europe/London"))) == jitter_for(job, T0)


def test_jitter_lies_in_zero_to_jitter_and_spreads_out() -> None:
    job = every(MINUTE, jitter=30 * SECOND)
    delays = [jitter_for(job, T0 + k * MINUTE) for k in range(500)]
    assert all(timedelta(0) <= d < 30 * SECOND for d in delays)
    assert len(set(delays)) > 490
    assert min(delays) < 3 * SECOND and max(delays) > 27 * SECOND
    other = every(MINUTE, name="other", jitter=30 * SECOND)
    assert jitter_for(other, T0) != jitter_for(job, T0)  # jobs of one tick are spread


def test_no_jitter_means_due_at_the_tick() -> None:
    job = every(MINUTE)
    assert jitter_for(job, T0) == timedelta(0)
    assert due_at(job, T0) == T0
    assert next_due(job, T0) == (T0 + MINUTE, T0 + MINUTE)


def test_a_jittered_tick_is_sent_at_its_due_time_not_before() -> None:
    job = every(MINUTE, jitter=30 * SECOND)
    tick_at = T0 + MINUTE
    due = tick_at + jitter_for(job, tick_at)
    assert next_due(job, T0) == (tick_at, due)
    assert due_at(job, tick_at) == due
    assert plan(job, T0, due - timedelta(microseconds=1), False) == Plan((), T0)
    assert plan(job, T0, due, False) == Plan((Action(ActionKind.SEND, tick_at),), tick_at)


def test_next_due_is_none_when_the_job_has_no_more_ticks() -> None:
    job = JobSpec(name="launch", task="jobs.health.ping", schedule=AtSchedule(T0), tz=UTC_ZONE)
    assert next_due(job, T0 - SECOND) == (T0, T0)
    assert next_due(job, T0) is None


def test_a_shared_tick_memo_gives_each_job_its_own_next_due() -> None:
    # One memo for a whole start-up: jobs that differ only in name, zone, window, jitter or
    # H hash must not borrow each other's tick.
    london, tokyo = ZoneInfo("Europe/London"), ZoneInfo("Asia/Tokyo")
    jobs = [
        cron("0 2 * * *", "a"),
        cron("0 2 * * *", "b"),
        cron("0 2 * * *", "c", jitter=timedelta(minutes=30)),
        cron("H 2 * * *", "d"),
        cron("H 2 * * *", "e"),
        cron("0 2 * * *", "f", start_at=T0 + 3 * DAY),
        cron("0 2 * * *", "g", end_at=T0 + DAY / 2),
        JobSpec(
            name="h",
            task="jobs.health.ping",
            schedule=CronSchedule(parse_cron("0 2 * * *", "h"), london),
            tz=london,
        ),
        JobSpec(
            name="i",
            task="jobs.health.ping",
            schedule=CronSchedule(parse_cron("0 2 * * *", "i"), tokyo),
            tz=tokyo,
        ),
        cron("* 2 * * *", "j"),
        every(timedelta(hours=5), "k"),
        every(timedelta(hours=5), "l", jitter=timedelta(hours=1)),
        every(timedelta(hours=7), "m"),
        JobSpec(name="n", task="jobs.health.ping", schedule=AtSchedule(T0 + DAY), tz=UTC_ZONE),
    ]
    memo: dict[Any, Any] = {}
    for after in (T0, T0 + DAY, T0 + DAY):
        for job in jobs:
            assert next_due(job, after, memo) == next_due(job, after), job.name
    assert next_due(jobs[6], T0, memo) is None  # "g" ends before its first tick


# --- huge outages ------------------------------------------------------------------------


def test_an_every_second_job_after_30_days_down_is_planned_in_bounded_space() -> None:
    # 2,592,000 ticks were missed: only the newest MISSED_RECORD_LIMIT+1 become actions and
    # the rest are counted, so the plan stays small (and fast: no tick-by-tick walk).
    job = every(SECOND, misfire=Misfire.SKIP, overlap=Overlap.ALLOW)
    result = plan(job, T0 - 30 * DAY, T0, has_active_run=False)
    assert 0 < len(result.actions) <= MISSED_RECORD_LIMIT + 1
    assert result.uncounted_missed > 0
    assert len(result.actions) + result.uncounted_missed == 30 * 86400
    assert ticks(result) == [T0 - k * SECOND for k in range(len(result.actions) - 1, -1, -1)]
    assert result.newest_tick_at == T0
    on_time = 61  # T0-60s .. T0
    assert codes(result) == "M" * (len(result.actions) - on_time) + "S" * on_time


def test_a_huge_outage_past_the_end_of_an_every_job_records_its_last_ticks() -> None:
    # The job ended 10 days ago; beat was down for 30. Its last ticks before `end` are
    # missed, and the cursor reaches the last one (else the beat would plan it forever).
    end_at = T0 - 10 * DAY
    job = every(SECOND, misfire=Misfire.SKIP, end_at=end_at)
    result = plan(job, T0 - 30 * DAY, T0, has_active_run=False)
    assert 0 < len(result.actions) <= MISSED_RECORD_LIMIT + 1
    assert codes(result) == "M" * len(result.actions)
    assert result.newest_tick_at == end_at - SECOND
    assert len(result.actions) + result.uncounted_missed == 20 * 86400 - 1
    assert job.next_tick(result.newest_tick_at) is None


def test_a_huge_outage_before_the_start_of_an_every_job_counts_only_real_ticks() -> None:
    start_at = T0 - DAY
    job = every(SECOND, misfire=Misfire.SKIP, start_at=start_at)
    result = plan(job, T0 - 30 * DAY, T0, has_active_run=False)
    assert len(result.actions) + result.uncounted_missed == 86400 + 1  # start inclusive
    assert result.newest_tick_at == T0


@pytest.mark.parametrize("down", [5 * SECOND, 1001 * SECOND, 1002 * SECOND, 5000 * SECOND])
def test_every_missed_tick_is_either_an_action_or_counted(down: timedelta) -> None:
    job = every(SECOND, misfire=Misfire.RUN_ALL, overlap=Overlap.ALLOW)
    result = plan(job, T0 - down, T0, has_active_run=False)
    assert len(result.actions) + result.uncounted_missed == down // SECOND
    assert len(set(ticks(result))) == len(result.actions)
    assert ticks(result) == sorted(ticks(result))
    assert result.newest_tick_at == T0
