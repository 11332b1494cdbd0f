"""The ticks of a schedule: pure functions of (schedule, after), daylight saving time included.

The DST rule is SPEC §4, the rule of Vixie cron and cronie. We own it because the libraries
get it wrong: croniter 7 fires a fixed-time job such as `30 1 * * *` twice on a fall-back
night, and Celery's crontab fires `30 2 * * *` at 03:30 instead of 03:00 on a spring-forward
night. Nothing here reads the clock: `after` is always an argument.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from scheduler.timeengine.cron import CronExpr

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MINUTE = timedelta(minutes=1)
_TINY = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class CronSchedule:
    expr: CronExpr
    tz: ZoneInfo


@dataclass(frozen=True, slots=True)
class EverySchedule:
    interval: timedelta
    anchor_at: datetime = EPOCH


@dataclass(frozen=True, slots=True)
class AtSchedule:
    at: datetime  # aware, already resolved from the wall clock


Schedule = CronSchedule | EverySchedule | AtSchedule


def resolve_wall_time(wall: datetime, tz: ZoneInfo) -> datetime:
    """The instant of a naive wall-clock time in `tz`, in UTC (SPEC §4 `at`).

    A time repeated by a fall-back means its first pass; a time skipped by a spring-forward
    gap means the first instant after the gap.
    """
    if _in_gap(wall, tz):
        return _gap_end(wall, tz)
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def _in_gap(wall: datetime, tz: ZoneInfo) -> bool:
    local = wall.replace(tzinfo=tz)
    return local.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != wall


def _gap_end(wall: datetime, tz: ZoneInfo) -> datetime:
    # In a gap, fold=0 reads the wall time with the offset from before the transition and
    # fold=1 with the one after (PEP 495), so the transition lies between the two readings.
    # Offsets are whole seconds, so bisecting on seconds finds it exactly.
    readings = sorted(wall.replace(tzinfo=tz, fold=f).timestamp() for f in (0, 1))
    lo, hi = math.floor(readings[0]), math.ceil(readings[1])
    new_offset = _offset_at(hi, tz)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset_at(mid, tz) == new_offset:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def _offset_at(timestamp: int, tz: ZoneInfo) -> timedelta | None:
    return datetime.fromtimestamp(timestamp, tz).utcoffset()


def _cron_ticks(expr: CronExpr, tz: ZoneInfo, after: datetime) -> Iterator[datetime]:
    after = after.astimezone(UTC)
    local = after.astimezone(tz)
    cursor = local.replace(tzinfo=None, fold=0)
    if local.fold == 0:
        # Inside the first pass of a fall-back, wall times earlier than `after`'s own still
        # have a second pass later than `after`; start early enough to see them.
        offset, other = local.utcoffset(), local.replace(fold=1).utcoffset()
        if offset is not None and other is not None and other != offset:
            cursor -= abs(offset - other)
    # Second passes come after later first passes (01:30 EDT < 01:00 EST), so hold them in a
    # heap until the wall-clock walk has passed their instant.
    pending: list[datetime] = []
    last = after
    while True:
        wall = expr.next_match(cursor)
        if wall is None:
            break
        cursor = wall + _MINUTE
        local = wall.replace(tzinfo=tz)  # fold=0: the first pass of a repeated wall time
        instant = local.astimezone(UTC)
        # A wall time in a gap does not survive the round trip. The comparison of two
        # datetimes with the same tzinfo is on the wall clock alone (PEP 495), so this is
        # _in_gap() without converting the wall time a second time: the hot path.
        if instant.astimezone(tz) != local:
            if expr.frequent:
                continue  # frequent: a wall time that never happens does not fire
            instant = _gap_end(wall, tz)  # fixed-time: once, at the first instant after
        while pending and pending[0] < instant:
            tick = heapq.heappop(pending)
            if tick > last:
                yield tick
                last = tick
        if instant > last:
            yield instant
            last = instant
        if expr.frequent:
            second = wall.replace(tzinfo=tz, fold=1)
            if second.utcoffset() != local.utcoffset():  # a fall-back repeats this wall time
                heapq.heappush(pending, second.astimezone(UTC))
    while pending:
        tick = heapq.heappop(pending)
        if tick > last:
            yield tick
            last = tick


def next_every(anchor_at: datetime, interval: timedelta, after: datetime) -> datetime:
    """Return the first tick of `anchor + k * interval` (k >= 0) strictly after `after`."""
    # Work in UTC: subtracting two datetimes that share a tzinfo gives the wall-clock
    # difference, not elapsed time, and the ticks would drift by an hour across DST.
    anchor_at, after = anchor_at.astimezone(UTC), after.astimezone(UTC)
    k = max(0, (after - anchor_at) // interval + 1)
    return anchor_at + k * interval


def iter_ticks(
    schedule: Schedule,
    after: datetime,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
) -> Iterator[datetime]:
    """Yield the ticks strictly after `after` in increasing order, as UTC datetimes.

    `start_at` is inclusive and `end_at` exclusive. Raises ValueError for a naive `after`.
    """
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    after = after.astimezone(UTC)
    if start_at is not None and start_at - _TINY > after:
        after = start_at - _TINY
    ticks: Iterator[datetime]
    match schedule:
        case CronSchedule(expr=expr, tz=tz):
            ticks = _cron_ticks(expr, tz, after)
        case EverySchedule(interval=interval, anchor_at=anchor_at):
            ticks = _every_ticks(anchor_at, interval, after)
        case AtSchedule(at=at):
            ticks = iter([at.astimezone(UTC)] if at > after else [])
    for tick in ticks:
        if end_at is not None and tick >= end_at:
            return
        yield tick


def _every_ticks(anchor_at: datetime, interval: timedelta, after: datetime) -> Iterator[datetime]:
    tick = next_every(anchor_at, interval, after)
    while True:
        yield tick
        tick += interval


def next_ticks(
    schedule: Schedule,
    after: datetime,
    n: int = 1,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
) -> list[datetime]:
    """The first `n` ticks strictly after `after` (fewer if the schedule ends)."""
    ticks = iter_ticks(schedule, after, start_at, end_at)
    return [tick for _, tick in zip(range(n), ticks, strict=False)]


def ticks_between(
    schedule: Schedule,
    after: datetime,
    until: datetime,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
) -> Iterator[datetime]:
    """The ticks in (after, until], in order: what a beat that slept through them missed."""
    for tick in iter_ticks(schedule, after, start_at, end_at):
        if tick > until:
            return
        yield tick
