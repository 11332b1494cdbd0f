"""Cron text -> CronExpr, and matching of naive wall-clock times.

We parse cron ourselves instead of through croniter because every error must point at the
offending character (`minute 61 is out of range 0-59` at column 1 of `61`), and croniter's
errors carry neither the field nor the offset; its `expand()` also drops the `W` marker, and
its `H` depends on its own hash. croniter stays in the test suite as an independent oracle
for field matching. Time zones and daylight saving time are not handled here (see ticks.py):
this module only knows the naive wall clock.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import lru_cache

from scheduler.timeengine.cronfields import CronError as CronError
from scheduler.timeengine.cronfields import Field, parse_field
from scheduler.timeengine.days import DayFields, DayTable, month_shape, table_for

MACROS: dict[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

# How far ahead a search for the next match goes before deciding there is none: the
# Gregorian calendar's weekday/leap-year pattern repeats within 28 years between 1901
# and 2099, so an expression with no match in 29 years will never match again.
_SEARCH_YEARS = 29


# The longest each month can be (February in a leap year), index 1 = January.
_LONGEST_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True, slots=True)
class CronExpr:
    """A parsed cron expression; `fields` is the text with H resolved to numbers."""

    text: str
    fields: tuple[str, str, str, str, str]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: frozenset[int]
    # SPEC §4 (Vixie cron / cronie): frequent if the minute or the hour field starts with `*`.
    frequent: bool
    # The day-of-month and day-of-week fields (`day_table.fields`) with their matching days
    # per month; shared by every expression that has the same two day fields.
    day_table: DayTable

    @property
    def days(self) -> frozenset[int]:
        """The plain days of the month (without L, LW and W)."""
        return self.day_table.fields.days

    @property
    def weekdays(self) -> frozenset[int]:
        """The plain days of the week, 0 = Sunday (without # and L)."""
        return self.day_table.fields.weekdays

    @property
    def dom_restricted(self) -> bool:
        return self.day_table.fields.dom_restricted

    @property
    def dow_restricted(self) -> bool:
        return self.day_table.fields.dow_restricted

    def day_matches(self, day: date) -> bool:
        """True if the calendar day matches the day-of-month/day-of-week fields."""
        return day.day in self.day_table.days(*month_shape(day.year, day.month))

    def matching_days(self, year: int, month: int) -> list[int]:
        """The days of the month that match, in order (empty if the month does not)."""
        if month not in self.months:
            return []
        return list(self.day_table.days(*month_shape(year, month)))

    def next_match(self, start: datetime) -> datetime | None:
        """The first naive wall-clock minute >= `start` that matches, or None within 29 years."""
        if start.second or start.microsecond:
            start = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
        year, month, day = start.year, start.month, start.day
        months, table = self.months, self.day_table
        if month in months:
            days = table.days(*month_shape(year, month))
            i = bisect_left(days, day)
            if i < len(days) and days[i] == day:
                found = self._first_time_from(start.hour, start.minute)
                if found is not None:
                    return datetime(year, month, day, found[0], found[1])
                i += 1
            if i < len(days):
                return datetime(year, month, days[i], self.hours[0], self.minutes[0])
        for _ in range(_SEARCH_YEARS * 12 - 1):
            month += 1
            if month == 13:
                year, month = year + 1, 1
            if year > 9998:
                return None
            if month in months:
                days = table.days(*month_shape(year, month))
                if days:
                    return datetime(year, month, days[0], self.hours[0], self.minutes[0])
        return None

    def _first_time_from(self, hour: int, minute: int) -> tuple[int, int] | None:
        """The first (hour, minute) of the day at or after hour:minute, or None."""
        hours, minutes = self.hours, self.minutes
        i = bisect_left(hours, hour)
        if i == len(hours):
            return None
        if hours[i] > hour:
            return hours[i], minutes[0]
        j = bisect_left(minutes, minute)
        if j < len(minutes):
            return hour, minutes[j]
        if i + 1 < len(hours):
            return hours[i + 1], minutes[0]
        return None


_TOKEN = re.compile(r"\S+")
# An item that starts with H: only then does the job name (the hash key) change the result,
# so only then is it part of a cache key.
_USES_H = re.compile(r"(?:^|[\s,])[Hh]")


def parse_cron(text: str, hash_key: str = "") -> CronExpr:
    """Parse a 5-field cron expression or macro; raises CronError with the offset of the fault.

    `hash_key` (the job name) seeds `H`, so different jobs spread over the range.
    """
    # Schedules repeat the same few expressions (`*/5 * * * *`), and the result is immutable,
    # so parse each once; a reload of 100,000 jobs then costs a cache look-up per job.
    return _parse(text, _key_if_hashed(text, hash_key))


def clear_caches() -> None:
    """Forget every parsed expression and field (for benchmarks that time a cold parse)."""
    for cache in (_parse, parse_field, _table_for, _never_matching_day, month_shape):
        cache.cache_clear()


def _key_if_hashed(text: str, hash_key: str) -> str:
    # The `in` tests first: they are ten times cheaper than the regex, and most text has no H.
    return hash_key if ("H" in text or "h" in text) and _USES_H.search(text) else ""


def _offsets(text: str) -> list[int]:
    # Only on the error path: str.split() is much faster than the regex, and splits the same
    # way (str.isspace and the regex's \s agree on every code point).
    return [m.start() for m in _TOKEN.finditer(text)]


@lru_cache(maxsize=4096)
def _parse(text: str, hash_key: str) -> CronExpr:
    tokens = text.split()
    if not tokens:
        raise CronError(0, "empty cron expression")
    if tokens[0].startswith("@"):
        return _parse_macro(text, tokens)
    if len(tokens) != 5:
        where = _offsets(text)[5] if len(tokens) > 5 else len(text)
        raise CronError(
            where,
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(tokens)}",
        )
    parsed = []
    for index, token in enumerate(tokens):
        try:
            parsed.append(parse_field(token, index, _key_if_hashed(token, hash_key)))
        except CronError as exc:
            raise CronError(_offsets(text)[index] + exc.offset, exc.message) from None
    minute, hour, dom, month, dow = parsed
    never = _never_matching_day(dom, dow, month)
    if never is not None:
        raise CronError(_offsets(text)[2], f"never matches: none of the months has day {never}")
    return CronExpr(
        text=text,
        fields=(minute.text, hour.text, dom.text, month.text, dow.text),
        minutes=minute.ordered,
        hours=hour.ordered,
        months=month.values,
        frequent=not minute.restricted or not hour.restricted,
        day_table=_table_for(dom, dow),
    )


def _parse_macro(text: str, tokens: list[str]) -> CronExpr:
    offsets = _offsets(text)
    macro = tokens[0]
    if len(tokens) > 1:
        raise CronError(offsets[1], f"unexpected text after {macro}")
    if macro.lower() == "@reboot":
        raise CronError(offsets[0], "@reboot is not supported: a schedule needs clock times")
    if macro.lower() not in MACROS:
        raise CronError(
            offsets[0], f"unknown macro {macro!r} (expected one of {', '.join(MACROS)})"
        )
    return replace(_parse(MACROS[macro.lower()], ""), text=text)


@lru_cache(maxsize=4096)
def _table_for(dom: Field, dow: Field) -> DayTable:
    return table_for(
        DayFields(
            days=dom.values,
            last_day=dom.last_day,
            last_weekday_of_month=dom.last_weekday_of_month,
            nearest_weekdays=dom.nearest,
            weekdays=dow.values,
            nth_weekdays=dow.nth,
            last_weekdays=dow.last_weekdays,
            dom_restricted=dom.restricted,
            dow_restricted=dow.restricted,
        )
    )


@lru_cache(maxsize=4096)
def _never_matching_day(dom: Field, dow: Field, month: Field) -> int | None:
    """A day of `0 0 30 2 *`, valid syntax that never fires: say so rather than schedule nothing."""
    if dow.restricted or not dom.restricted or dom.last_day or dom.last_weekday_of_month:
        return None
    longest = max(_LONGEST_MONTH[m] for m in month.values)
    if any(d <= longest for d in dom.values | dom.nearest):
        return None
    return min(dom.values | dom.nearest)
