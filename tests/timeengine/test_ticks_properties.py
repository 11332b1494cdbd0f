"""Properties of the ticks, checked against a brute-force reference (SPEC §4).

The reference walks real UTC minutes, reads each one on the zone's wall clock and decides from
the SPEC rule alone whether it is a tick. Whether a wall-clock minute matches the cron fields is
decided by croniter, an independent oracle; the expressions generated here keep to the syntax on
which croniter and the SPEC agree (numbers, names, lists, ranges, numeric steps; a `*/n` day field
only when the other day field is `*`).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from scheduler.timeengine.cron import CronError, CronExpr, parse_cron
from scheduler.timeengine.ticks import (
    AtSchedule,
    CronSchedule,
    EverySchedule,
    Schedule,
    iter_ticks,
    next_ticks,
    resolve_wall_time,
    ticks_between,
)

MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)

DST_ZONES = [
    "America/New_York",
    "Europe/London",
    "Europe/Dublin",  # negative DST in winter
    "Europe/Berlin",
    "Australia/Lord_Howe",  # 30-minute shift
    "Australia/Sydney",
    "Pacific/Chatham",  # +12:45 / +13:45
    "America/Santiago",  # transitions at midnight
    "America/Sao_Paulo",  # transitions at midnight, no DST after 2019
    "America/Havana",  # 00:00 -> 01:00 and 01:00 -> 00:00
    "Pacific/Apia",  # a skipped day in 2011, DST 2010-2021
    "Asia/Tehran",  # transitions at midnight, no DST after 2022
]
ZONES = [*DST_ZONES, "UTC", "Asia/Kolkata"]

SETTINGS = settings(max_examples=60, deadline=None)
WINDOW = timedelta(days=3)


# --- zone transitions, from zoneinfo (the ground truth for a zone's rules) -----------------------


def _offset(instant: datetime, tz: ZoneInfo) -> timedelta | None:
    return instant.astimezone(tz).utcoffset()


def _wall(instant: datetime, tz: ZoneInfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


@functools.cache
def transitions(zone: str, year: int) -> tuple[datetime, ...]:
    """The instants in `year` at which the zone's UTC offset changes."""
    tz = ZoneInfo(zone)
    found = []
    step = timedelta(hours=6)
    cursor, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    while cursor < end:
        if _offset(cursor, tz) != _offset(cursor + step, tz):
            # Offsets change on whole seconds: bisect on integer timestamps.
            lo, hi = int(cursor.timestamp()), int((cursor + step).timestamp())
            before = _offset(cursor, tz)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if _offset(_at(mid), tz) == before else (lo, mid)
            found.append(_at(hi))
        cursor += step
    return tuple(found)


def _at(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


@dataclass(frozen=True)
class Moment:
    tz: ZoneInfo
    after: datetime  # UTC, up to a day and a half before a transition or a little after it
    transition_at: datetime  # or a plain instant, in a zone or year without transitions

    @property
    def local_hours(self) -> list[int]:
        """The wall-clock hours on either side of the transition: where gaps and repeats are."""
        before, at = _wall(self.transition_at - SECOND, self.tz), _wall(self.transition_at, self.tz)
        return sorted({before.hour, at.hour})


@st.composite
def moments(draw: st.DrawFn) -> Moment:
    zone = draw(st.sampled_from(ZONES))
    year = draw(st.integers(2000, 2037))
    found = transitions(zone, year)
    if found:
        center = draw(st.sampled_from(found))
    else:
        center = datetime(year, 1, 1, tzinfo=UTC) + timedelta(days=draw(st.integers(0, 364)))
    # Mostly before the transition (by whole minutes or not), so that the window holds it.
    shift = draw(
        st.one_of(
            st.integers(1, 36 * 60).map(lambda m: -m * MINUTE),
            st.integers(1, 36 * 3600).map(lambda s: -s * SECOND),
            st.integers(0, 6 * 3600).map(lambda s: s * SECOND),
        )
    )
    return Moment(ZoneInfo(zone), center + shift, center)


# --- cron expressions within the syntax croniter shares ------------------------------------------


def _numeric_field(lo: int, hi: int, favoured: list[int], star: bool) -> st.SearchStrategy[str]:
    value = st.one_of(st.sampled_from(favoured), st.integers(lo, hi))
    step = st.integers(1, max(1, (hi - lo + 1) // 2))

    @st.composite
    def item(draw: st.DrawFn) -> str:
        kind = draw(st.integers(0, 3))
        a = draw(value)
        if kind == 3:
            # croniter reads day-of-week `7/n` as `0/n`; cronie and the SPEC, as 7 (Sunday) on.
            return f"{min(a, 6) if hi == 7 else a}/{draw(step)}"
        if kind == 0 or a == hi:
            return str(a)
        # croniter reads a range `a-a` as the whole field; cron reads it as `a`. Avoid it.
        b = draw(st.integers(a + 1, hi))
        return f"{a}-{b}/{draw(step)}" if kind == 2 else f"{a}-{b}"

    items = st.lists(item(), min_size=1, max_size=3).map(",".join)
    if not star:
        return items
    return st.one_of(st.just("*"), step.map(lambda n: f"*/{n}"), items, items)


_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


@st.composite
def _named_range(draw: st.DrawFn, names: list[str]) -> str:
    a = draw(st.integers(0, len(names) - 1))
    if draw(st.booleans()) or a == len(names) - 1:
        return names[a]
    b = draw(st.integers(a + 1, len(names) - 1))  # not `a-a`, as above
    return f"{names[a]}-{names[b]}"


@st.composite
def cron_fields(
    draw: st.DrawFn, frequent: bool | None = None, hours: tuple[int, ...] = ()
) -> tuple[str, ...]:
    """Five fields; `frequent` makes the minute or the hour field start with `*` (or neither).

    `hours` are favoured in the hour field: those of a transition, so that fixed-time jobs
    often have a wall time in its gap or its repeat.
    """
    if frequent is None:
        frequent = draw(st.booleans())
    minute = draw(_numeric_field(0, 59, [0, 15, 30, 45, 59], star=frequent))
    hour = draw(_numeric_field(0, 23, list(hours or (0, 1, 2, 3, 23)), star=frequent))
    if frequent and not (minute.startswith("*") or hour.startswith("*")):
        minute = "*/" + draw(st.sampled_from(["1", "5", "15", "30"]))
    # Mostly `*` in the day and month fields: a transition is one day, and a window of three
    # days should usually hold ticks.
    rare = st.integers(0, 9).map(lambda n: n >= 7)
    dom = dow = month = "*"
    if draw(rare):
        dom = draw(
            st.one_of(
                _numeric_field(1, 31, [1, 12, 13, 30, 31], star=False),
                st.integers(2, 15).map(lambda n: f"*/{n}"),
            )
        )
    if draw(rare):
        dow = draw(
            st.one_of(
                _numeric_field(0, 7, [0, 6, 7], star=False),
                st.lists(_named_range(_DAYS), min_size=1, max_size=2).map(",".join),
                st.integers(2, 3).map(lambda n: f"*/{n}"),
            )
        )
    if (dom.startswith("*/") and dow != "*") or (dow.startswith("*/") and dom != "*"):
        # croniter ORs `*/n` with a restricted field; Vixie cron and the SPEC AND them.
        dow = "*"
    if draw(rare):
        month = draw(
            st.one_of(
                _numeric_field(1, 12, [3, 4, 10, 11], star=False),
                _named_range(_MONTHS),
            )
        )
    assert (minute.startswith("*") or hour.startswith("*")) == frequent
    return (minute, hour, dom, month, dow)


@dataclass(frozen=True)
class CronCase:
    fields: tuple[str, ...]
    expr: CronExpr
    moment: Moment

    @property
    def schedule(self) -> CronSchedule:
        return CronSchedule(self.expr, self.moment.tz)


@st.composite
def cron_cases(draw: st.DrawFn, frequent: bool | None = None) -> CronCase:
    moment = draw(moments())
    fields = draw(cron_fields(frequent, tuple(moment.local_hours)))
    try:
        expr = parse_cron(" ".join(fields))
    except CronError:
        assume(False)  # e.g. `0 0 31 feb *`, which never matches
        raise
    return CronCase(fields, expr, moment)


# --- the reference -------------------------------------------------------------------------------

# croniter decides each wall-clock minute. Cron fields are independent except the two day fields,
# so `min hour dom month dow` matches a minute exactly when `min * * * *`, `0 hour * * *` and
# `0 0 dom month dow` all match it. Asking the three questions apart lets the answers be cached,
# which keeps a minute-by-minute walk over days affordable.


@functools.cache
def _minute_ok(field: str, minute: int) -> bool:
    return bool(croniter.match(f"{field} * * * *", datetime(2001, 1, 1, 0, minute)))


@functools.cache
def _hour_ok(field: str, hour: int) -> bool:
    return bool(croniter.match(f"0 {field} * * *", datetime(2001, 1, 1, hour, 0)))


@functools.cache
def _day_ok(dom: str, month: str, dow: str, day: date) -> bool:
    return bool(croniter.match(f"0 0 {dom} {month} {dow}", datetime(day.year, day.month, day.day)))


def wall_matcher(fields: tuple[str, ...]) -> Callable[[datetime], bool]:
    minute, hour, dom, month, dow = fields

    def matches(wall: datetime) -> bool:
        return (
            _minute_ok(minute, wall.minute)
            and _hour_ok(hour, wall.hour)
            and _day_ok(dom, month, dow, wall.date())
        )

    return matches


def _minutes_between(earlier: datetime, later: datetime) -> list[datetime]:
    """The whole wall-clock minutes strictly between two wall-clock times."""
    found = []
    minute = earlier.replace(second=0, microsecond=0) + MINUTE
    while minute < later:
        found.append(minute)
        minute += MINUTE
    return found


def reference_ticks(
    fields: tuple[str, ...], tz: ZoneInfo, after: datetime, until: datetime
) -> list[datetime]:
    """The ticks in (after, until], by the SPEC rule, one real minute at a time."""
    frequent = fields[0].startswith("*") or fields[1].startswith("*")
    matches = wall_matcher(fields)
    ticks = []
    # Start a day early so that the first pass of any wall time repeated after `after` is seen.
    instant = after.astimezone(UTC).replace(second=0, microsecond=0) - timedelta(days=1)
    previous = _wall(instant - MINUTE, tz)
    seen: set[datetime] = set()
    while instant <= until:
        wall = _wall(instant, tz)
        first_pass = wall not in seen
        seen.add(wall)
        if frequent:
            tick = matches(wall)
        else:
            # The wall-clock minutes jumped over since the previous real minute: a gap.
            skipped = _minutes_between(previous, wall)
            tick = (matches(wall) and first_pass) or any(map(matches, skipped))
        if tick and instant > after:
            ticks.append(instant)
        previous = wall
        instant += MINUTE
    return ticks


# --- cron properties -----------------------------------------------------------------------------


@pytest.mark.slow  # a minute-by-minute reference over 4 days, 200 examples: ~20 s each
@pytest.mark.parametrize("frequent", [False, True], ids=["fixed-time", "frequent"])
@settings(SETTINGS, max_examples=200)
@given(data=st.data())
def test_cron_ticks_equal_the_reference(frequent: bool, data: st.DataObject) -> None:
    case = data.draw(cron_cases(frequent))
    tz, after = case.moment.tz, case.moment.after
    until = after + WINDOW
    expected = reference_ticks(case.fields, tz, after, until)
    assert list(ticks_between(case.schedule, after, until)) == expected
    # What the examples exercised (pytest --hypothesis-show-statistics).
    walls = [_wall(tick, tz) for tick in expected]
    if not expected:
        event("no ticks")
    if len(set(walls)) < len(walls):
        event("a wall time fired twice")
    if any(tick != resolve_wall_time(wall, tz) for tick, wall in zip(expected, walls, strict=True)):
        event("a tick on a second pass")
    if not all(map(wall_matcher(case.fields), walls)):
        event("a tick after a gap")


@SETTINGS
@given(cron_cases(frequent=False))
def test_fixed_time_never_fires_twice_for_a_wall_time(case: CronCase) -> None:
    tz, after = case.moment.tz, case.moment.after
    assert not case.expr.frequent
    ticks = list(ticks_between(case.schedule, after, after + WINDOW))
    walls = [_wall(tick, tz) for tick in ticks]
    assert len(set(walls)) == len(walls)
    matches = wall_matcher(case.fields)
    for tick, wall in zip(ticks, walls, strict=True):
        # Never a second pass: each tick is the first instant its wall time happens.
        assert tick == resolve_wall_time(wall, tz)
        if not matches(wall):
            # Then it is the first instant after a gap that swallowed a matching wall time.
            before = _wall(tick - SECOND, tz)
            assert wall - before > SECOND
            assert any(map(matches, _minutes_between(before, wall)))


@SETTINGS
@given(cron_cases(frequent=True))
def test_frequent_ticks_match_on_the_wall_clock(case: CronCase) -> None:
    tz, after = case.moment.tz, case.moment.after
    assert case.expr.frequent
    matches = wall_matcher(case.fields)
    for tick in ticks_between(case.schedule, after, after + WINDOW):
        assert tick.second == 0
        assert matches(_wall(tick, tz))


# --- any schedule --------------------------------------------------------------------------------


@st.composite
def every_schedules(draw: st.DrawFn) -> EverySchedule:
    interval = draw(
        st.one_of(
            st.sampled_from([timedelta(hours=1), timedelta(minutes=90), timedelta(days=1)]),
            st.integers(1, 3 * 86400).map(lambda s: timedelta(seconds=s)),
            st.integers(1_000_000, 10**11).map(lambda us: timedelta(microseconds=us)),
        )
    )
    if draw(st.booleans()):
        return EverySchedule(interval)
    # A `start` is resolved from the wall clock as the loader does, then given in its zone (a
    # real instant: a second pass has fold=1, and nothing is in a gap).
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    wall = draw(st.datetimes(datetime(2000, 1, 1), datetime(2037, 12, 31)))
    return EverySchedule(interval, resolve_wall_time(wall, zone).astimezone(zone))


@st.composite
def schedules(draw: st.DrawFn, moment: Moment) -> Schedule:
    kind = draw(st.sampled_from(["cron", "every", "at"]))
    if kind == "cron":
        fields = draw(cron_fields(hours=tuple(moment.local_hours)))
        try:
            return CronSchedule(parse_cron(" ".join(fields)), moment.tz)
        except CronError:
            assume(False)
            raise
    if kind == "every":
        return draw(every_schedules())
    # An `at` near the transition, as often in its gap or repeat as not.
    near = _wall(moment.transition_at, moment.tz)
    wall = near + timedelta(seconds=draw(st.integers(-3 * 3600, 3 * 3600)))
    return AtSchedule(resolve_wall_time(wall, moment.tz))


@SETTINGS
@given(st.data(), moments())
def test_ticks_strictly_increase_after_after(data: st.DataObject, moment: Moment) -> None:
    schedule = data.draw(schedules(moment))
    after = moment.after
    ticks = next_ticks(schedule, after, 30)
    assert all(tick > after for tick in ticks)
    assert all(a < b for a, b in itertools.pairwise(ticks))
    assert all(tick.tzinfo is UTC for tick in ticks)
    if isinstance(schedule, AtSchedule):
        assert ticks == ([schedule.at] if schedule.at > after else [])
    else:
        assert len(ticks) == 30


@SETTINGS
@given(st.data(), moments())
def test_resuming_from_a_tick_gives_the_next(data: st.DataObject, moment: Moment) -> None:
    schedule = data.draw(schedules(moment))
    ticks = next_ticks(schedule, moment.after, 12)
    for k in range(len(ticks) - 1):
        assert next_ticks(schedule, ticks[k], 1) == [ticks[k + 1]]
        # Any instant between two ticks resumes at the later one: what a restarted beat does.
        between = ticks[k] + data.draw(st.floats(0, 1)) * (ticks[k + 1] - ticks[k])
        if between < ticks[k + 1]:
            assert next_ticks(schedule, between, 1) == [ticks[k + 1]]
    if ticks:
        assert next_ticks(schedule, ticks[-1], 1) == next_ticks(schedule, moment.after, 13)[12:]


@SETTINGS
@given(st.data(), moments())
def test_start_and_end_bound_the_ticks(data: st.DataObject, moment: Moment) -> None:
    schedule = data.draw(schedules(moment))
    after = moment.after
    ticks = next_ticks(schedule, after, 40)
    assume(len(ticks) >= 2)
    start_at = data.draw(st.sampled_from([*ticks, after - timedelta(hours=1), ticks[0] - MINUTE]))
    end_at = data.draw(st.sampled_from([*ticks, ticks[-1] + MINUTE]))
    expected = [tick for tick in ticks if start_at <= tick < end_at]
    bounded = []
    for tick in iter_ticks(schedule, after, start_at, end_at):
        if tick > ticks[-1]:  # beyond the unbounded list: only if `end_at` allows it
            assert end_at > ticks[-1]
            break
        bounded.append(tick)
    assert bounded == expected


# --- every and at --------------------------------------------------------------------------------


@SETTINGS
@given(every_schedules(), moments())
def test_every_ticks_sit_on_the_anchor_grid(schedule: EverySchedule, moment: Moment) -> None:
    after = moment.after
    ticks = next_ticks(schedule, after, 20)
    # In UTC: a datetime on a second pass never equals one in another zone (PEP 495).
    anchor_at, interval = schedule.anchor_at.astimezone(UTC), schedule.interval
    assert len(ticks) == 20
    for tick in ticks:
        assert (tick - anchor_at) % interval == timedelta(0)
        assert tick >= anchor_at
    assert all(b - a == interval for a, b in itertools.pairwise(ticks))
    # The first tick is the first grid point after `after`.
    assert ticks[0] > after
    assert ticks[0] == anchor_at or ticks[0] - interval <= after


@SETTINGS
@given(every_schedules(), moments())
def test_every_ignores_the_zone_of_after(schedule: EverySchedule, moment: Moment) -> None:
    # Real elapsed time: the same instant written in another zone gives the same ticks.
    local_after = moment.after.astimezone(moment.tz)
    assert next_ticks(schedule, local_after, 5) == next_ticks(schedule, moment.after, 5)


@SETTINGS
@given(moments(), st.integers(-90 * 60, 90 * 60))
def test_resolve_wall_time(moment: Moment, seconds: int) -> None:
    tz = moment.tz
    wall = _wall(moment.transition_at, tz) + timedelta(seconds=seconds)
    resolved = resolve_wall_time(wall, tz)
    assert resolved.tzinfo is UTC
    passes = _passes(wall, tz)
    if passes:
        assert resolved == passes[0]  # the first pass
        event("repeated" if len(passes) > 1 else "once")
    else:
        # In a gap: the first instant after it. A second earlier the wall clock read earlier.
        assert _wall(resolved, tz) > wall
        assert _wall(resolved - SECOND, tz) < wall
        event("in a gap")


def _passes(wall: datetime, tz: ZoneInfo) -> list[datetime]:
    """The real instants whose wall clock reads `wall`, found by trying every UTC offset."""
    found = []
    for quarter_hours in range(-14 * 4, 15 * 4):
        instant = (wall - timedelta(minutes=15 * quarter_hours)).replace(tzinfo=UTC)
        if _wall(instant, tz) == wall:
            found.append(instant)
    return sorted(set(found))
