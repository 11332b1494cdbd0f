"""Which days of a month match the day-of-month and day-of-week fields of a cron expression.

The days that match depend on the month only through its shape: the weekday of its first day
and its length (28-31). There are 28 shapes, so each pair of day fields keeps a table of the
days per shape, filled as shapes are asked for. This is the hot path of computing a next tick:
one table look-up per month instead of rebuilding sets of days.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class DayFields:
    """The day-of-month and day-of-week fields of one expression (cron weekdays: Sunday = 0)."""

    days: frozenset[int]
    last_day: bool  # L
    last_weekday_of_month: bool  # LW
    nearest_weekdays: frozenset[int]  # 15W
    weekdays: frozenset[int]
    nth_weekdays: frozenset[tuple[int, int]]  # (weekday, n) from 5#2
    last_weekdays: frozenset[int]  # 5L
    dom_restricted: bool
    dow_restricted: bool


@lru_cache(maxsize=4096)
def month_shape(year: int, month: int) -> tuple[int, int]:
    """(weekday of the 1st, Monday = 0; number of days) of a month."""
    return calendar.monthrange(year, month)


def nearest_weekday(first_weekday: int, ndays: int, day: int) -> int:
    """The weekday (Mon-Fri) nearest to `day` without leaving the month (the W rule)."""
    weekday = (first_weekday + day - 1) % 7  # Monday = 0
    if weekday == 5:  # Saturday: Friday before, unless that leaves the month
        return day - 1 if day > 1 else day + 2
    if weekday == 6:  # Sunday: Monday after, unless that leaves the month
        return day + 1 if day < ndays else day - 2
    return day


class DayTable:
    """The matching days of each month shape for one `DayFields`, computed on first use."""

    __slots__ = ("_by_shape", "fields")

    def __init__(self, fields: DayFields) -> None:
        self.fields = fields
        # Index first_weekday * 4 + ndays - 28. Filling a slot twice (two threads) is harmless:
        # both compute the same tuple.
        self._by_shape: list[tuple[int, ...] | None] = [None] * 28

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DayTable) and other.fields == self.fields

    def __hash__(self) -> int:
        return hash(self.fields)

    def days(self, first_weekday: int, ndays: int) -> tuple[int, ...]:
        """The matching days, in order, of a month of this shape."""
        index = first_weekday * 4 + ndays - 28
        found = self._by_shape[index]
        if found is None:
            found = self._by_shape[index] = self._compute(first_weekday, ndays)
        return found

    def _compute(self, first_weekday: int, ndays: int) -> tuple[int, ...]:
        f = self.fields
        # A field that takes every value (`*`, `1-31`, `0-6`) matches every day; most
        # expressions have one, and then only the other field needs working out.
        dom_all, dow_all = len(f.days) == 31, len(f.weekdays) == 7
        if f.dom_restricted and f.dow_restricted:
            # Vixie cron / cronie: OR only when both fields are restricted.
            if dom_all or dow_all:
                return tuple(range(1, ndays + 1))
            dom = self._dom_days(first_weekday, ndays)
            return tuple(sorted(dom | self._dow_days(first_weekday, ndays)))
        # Otherwise AND: a field that starts with `*` still limits its own values (`*/2`).
        if dow_all:
            return tuple(range(1, ndays + 1)) if dom_all else self._dom_sorted(first_weekday, ndays)
        if dom_all:
            return tuple(sorted(self._dow_days(first_weekday, ndays)))
        dom = self._dom_days(first_weekday, ndays)
        return tuple(sorted(dom & self._dow_days(first_weekday, ndays)))

    def _dom_sorted(self, first_weekday: int, ndays: int) -> tuple[int, ...]:
        return tuple(sorted(self._dom_days(first_weekday, ndays)))

    def _dom_days(self, first_weekday: int, ndays: int) -> set[int]:
        f = self.fields
        days = {d for d in f.days if d <= ndays} if ndays < 31 else set(f.days)
        if f.last_day:
            days.add(ndays)
        if f.last_weekday_of_month:
            days.add(nearest_weekday(first_weekday, ndays, ndays))
        days.update(
            nearest_weekday(first_weekday, ndays, n) for n in f.nearest_weekdays if n <= ndays
        )
        return days

    def _dow_days(self, first_weekday: int, ndays: int) -> set[int]:
        f = self.fields
        first = (first_weekday + 1) % 7  # the cron weekday of the 1st (calendar: Monday = 0)
        days: set[int] = set()
        for weekday in f.weekdays:
            days.update(range((weekday - first) % 7 + 1, ndays + 1, 7))
        for weekday, n in f.nth_weekdays:
            day = (weekday - first) % 7 + 1 + 7 * (n - 1)
            if day <= ndays:
                days.add(day)
        for weekday in f.last_weekdays:
            first_day = (weekday - first) % 7 + 1
            days.add(first_day + 7 * ((ndays - first_day) // 7))
        return days


@lru_cache(maxsize=4096)
def table_for(fields: DayFields) -> DayTable:
    """The table of `fields`, shared by every expression with equal day fields."""
    return DayTable(fields)
