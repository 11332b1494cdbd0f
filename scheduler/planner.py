"""What to do about a job's due ticks: pure decisions, no I/O, no clock.

Given a job, the latest tick already claimed for it (from the database) and `now`, `plan`
returns the actions the beat must take: send a run, record a missed tick, or record a
skipped one. Misfire policies, the catch-up cap, overlap and jitter are decided here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from scheduler.spec import JobSpec, Misfire, Overlap
from scheduler.timeengine.ticks import CronSchedule, EverySchedule, Schedule, iter_ticks, next_every

CATCHUP_LIMIT = 100  # SPEC §5: run_all runs at most 100 missed ticks per job per catch-up
# Beyond this many misfired ticks in one catch-up (an `every: 1s` job after a day down),
# only the newest are recorded as missed; the count of the rest is logged by the beat.
MISSED_RECORD_LIMIT = 1000


class ActionKind(StrEnum):
    SEND = "send"
    MISSED = "missed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    tick_at: datetime
    catchup: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    actions: tuple[Action, ...]
    newest_tick_at: datetime | None  # the job's cursor after these actions
    uncounted_missed: int = 0  # misfired ticks beyond MISSED_RECORD_LIMIT, not recorded


def jitter_for(job: JobSpec, tick_at: datetime) -> timedelta:
    """A delay in [0, jitter) that is the same for a tick on every beat process."""
    if not job.jitter:
        return timedelta(0)
    digest = hashlib.sha256(f"{job.name}|{tick_at.timestamp():.6f}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return timedelta(microseconds=int(job.jitter / timedelta(microseconds=1) * fraction))


def due_at(job: JobSpec, tick_at: datetime) -> datetime:
    """When a tick should be sent: its instant plus its jitter."""
    return tick_at + jitter_for(job, tick_at) if job.jitter else tick_at


TickMemo = dict[tuple[Any, ...], datetime | None]


def next_due(
    job: JobSpec, after_tick: datetime, memo: TickMemo | None = None
) -> tuple[datetime, datetime] | None:
    """(tick_at, due_at) of the job's first tick after `after_tick`, or None if none is left.

    `memo`, a dict the caller keeps for one pass over many jobs, computes the tick once for
    jobs that share a schedule and a cursor: a beat starting 100,000 jobs on a handful of
    cron lines would otherwise walk the same calendar 100,000 times.
    """
    if memo is None:
        tick_at = job.next_tick(after_tick)
    else:
        key = (_schedule_key(job.schedule), job.start_at, job.end_at, after_tick)
        if key in memo:
            tick_at = memo[key]
        else:
            tick_at = memo[key] = job.next_tick(after_tick)
    return None if tick_at is None else (tick_at, due_at(job, tick_at))


def _schedule_key(schedule: Schedule) -> Any:
    # A CronExpr hashes all its expanded fields; its text with H resolved says the same.
    if isinstance(schedule, CronSchedule):
        return (schedule.expr.fields, schedule.expr.frequent, schedule.tz)
    return schedule


def _due_ticks(job: JobSpec, cursor: datetime, now: datetime) -> tuple[list[datetime], int]:
    """The ticks in (cursor, now] whose due time has come, newest MISSED_RECORD_LIMIT+1 of them."""
    skipped = 0
    match job.schedule:
        case EverySchedule(interval=interval, anchor_at=anchor_at):
            # Jump ahead arithmetically: a long outage of a 1-second job is millions of ticks.
            # Only ticks inside the start/end window exist: jumping past `end_at` would find
            # no tick, leave the cursor behind a due tick, and the beat would loop on it.
            first = job.next_tick(cursor)
            until = now if job.end_at is None else min(now, job.end_at)
            earliest = until - interval * (MISSED_RECORD_LIMIT + 1)
            if first is not None and earliest >= first:
                jumped = next_every(anchor_at, interval, earliest)
                skipped = (jumped - first) // interval
                cursor = jumped - interval
    ticks = []
    for tick_at in iter_ticks(job.schedule, cursor, job.start_at, job.end_at):
        if due_at(job, tick_at) > now:
            break
        ticks.append(tick_at)
    if len(ticks) > MISSED_RECORD_LIMIT + 1:
        skipped += len(ticks) - MISSED_RECORD_LIMIT - 1
        ticks = ticks[-(MISSED_RECORD_LIMIT + 1) :]
    return ticks, skipped


def plan(job: JobSpec, last_tick_at: datetime | None, now: datetime, has_active_run: bool) -> Plan:
    """The actions for a job's ticks due by `now` after `last_tick_at`.

    `last_tick_at` None means the job was never seen: it has no missed ticks, only the ones
    due from now on. Disabled jobs get no actions (their ticks are neither run nor recorded).
    """
    if not job.enabled or last_tick_at is None:
        return Plan((), last_tick_at)
    ticks, uncounted = _due_ticks(job, last_tick_at, now)
    if not ticks:
        return Plan((), last_tick_at, uncounted)
    on_time = [t for t in ticks if now - due_at(job, t) <= job.misfire_grace]
    late = [t for t in ticks if now - due_at(job, t) > job.misfire_grace]
    actions: list[Action] = [Action(ActionKind.MISSED, t) for t in late]
    if late and job.misfire is Misfire.RUN_ONCE and not on_time:
        # Run once for the whole outage; if a tick is on time, that run is the one.
        actions[-1] = Action(ActionKind.SEND, late[-1], catchup=True)
    elif late and job.misfire is Misfire.RUN_ALL:
        for i in range(max(0, len(late) - CATCHUP_LIMIT), len(late)):
            actions[i] = Action(ActionKind.SEND, late[i], catchup=True)
    actions.extend(Action(ActionKind.SEND, t) for t in on_time)
    if job.overlap is Overlap.FORBID:
        actions = _forbid_overlap(actions, has_active_run)
    return Plan(tuple(actions), ticks[-1], uncounted)


def _forbid_overlap(actions: list[Action], has_active_run: bool) -> list[Action]:
    # Only one run of the job may be queued or running: once one send goes out (or one is
    # already active), every later send in this plan becomes a skipped tick.
    busy = has_active_run
    result = []
    for action in actions:
        if action.kind is ActionKind.SEND:
            if busy:
                action = Action(ActionKind.SKIPPED, action.tick_at, action.catchup)
            busy = True
        result.append(action)
    return result
