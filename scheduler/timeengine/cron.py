"""Cron text -> CronExpr, and matching of naive wall-clock times.

We parse cron ourselves instead of through croniter because every error must point at the
offending character (`minute 61 is out of range 0-59` at column 1 of `61`), and croniter's
errors carry neither the field nor the offset; its `expand()` also drops the `W` marker, and
its `H` depends on its own hash. croniter stays in the test suite as an independent oracle
for field matching. Time zones and daylight saving time are not handled here (see ticks.py):
this module only knows the naive wall clock.
"""

from __future__ import annotations

import calendar
import hashlib
import re
from bisect import bisect_left
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

MACROS: dict[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTH_NAMES = {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}
_DAY_NAMES = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}

# How far ahead a search for the next match goes before deciding there is none: the
# Gregorian calendar's weekday/leap-year pattern repeats within 28 years between 1901
# and 2099, so an expression with no match in 29 years will never match again.
_SEARCH_YEARS = 29


class CronError(ValueError):
    """Raised when a cron expression is invalid; `offset` is 0-based into the text."""

    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset
        self.message = message


@dataclass(frozen=True, slots=True)
class _FieldRange:
    name: str
    lo: int
    hi: int
    names: dict[str, int]


_MINUTE = _FieldRange("minute", 0, 59, {})
_HOUR = _FieldRange("hour", 0, 23, {})
_DOM = _FieldRange("day-of-month", 1, 31, {})
_MONTH = _FieldRange("month", 1, 12, _MONTH_NAMES)
_DOW = _FieldRange("day-of-week", 0, 7, _DAY_NAMES)
_FIELDS = (_MINUTE, _HOUR, _DOM, _MONTH, _DOW)
# H in day-of-month hashes into 1-28 so that the day exists in every month (as Jenkins does).
_H_DOM_HI = 28


@dataclass(frozen=True, slots=True)
class CronExpr:
    """A parsed cron expression; `fields` is the text with H resolved to numbers."""

    text: str
    fields: tuple[str, str, str, str, str]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    last_day: bool  # L
    last_weekday_of_month: bool  # LW
    nearest_weekdays: frozenset[int]  # 15W
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    nth_weekdays: frozenset[tuple[int, int]]  # (weekday, n) from 5#2
    last_weekdays: frozenset[int]  # 5L = last Friday of the month
    dom_restricted: bool
    dow_restricted: bool
    # SPEC §4 (Vixie cron / cronie): frequent if the minute or the hour field starts with `*`.
    frequent: bool

    def day_matches(self, day: date) -> bool:
        """True if the calendar day matches the day-of-month/day-of-week fields."""
        # Vixie cron / cronie: OR only when both fields are restricted. A field that starts
        # with `*` still limits its own values (`*/2` is the odd days), joined with AND.
        if self.dom_restricted and self.dow_restricted:
            return self._dom_matches(day) or self._dow_matches(day)
        return self._dom_matches(day) and self._dow_matches(day)

    def _dom_matches(self, day: date) -> bool:
        if day.day in self.days:
            return True
        ndays = calendar.monthrange(day.year, day.month)[1]
        if self.last_day and day.day == ndays:
            return True
        if self.last_weekday_of_month and day.day == _nearest_weekday(day.year, day.month, ndays):
            return True
        return any(
            n <= ndays and day.day == _nearest_weekday(day.year, day.month, n)
            for n in self.nearest_weekdays
        )

    def _dow_matches(self, day: date) -> bool:
        weekday = (day.weekday() + 1) % 7
        if weekday in self.weekdays:
            return True
        if (weekday, (day.day - 1) // 7 + 1) in self.nth_weekdays:
            return True
        ndays = calendar.monthrange(day.year, day.month)[1]
        return weekday in self.last_weekdays and day.day + 7 > ndays

    def matching_days(self, year: int, month: int) -> list[int]:
        """The days of the month that match, in order (empty if the month does not)."""
        if month not in self.months:
            return []
        # One monthrange() per month instead of one date() per day: this is the hot path
        # of computing a next tick.
        first_weekday, ndays = calendar.monthrange(year, month)  # Monday = 0
        if len(self.days) == 31 and len(self.weekdays) == 7:
            return list(range(1, ndays + 1))
        dom = self._dom_days(year, month, ndays)
        dow = self._dow_days(first_weekday, ndays)
        if self.dom_restricted and self.dow_restricted:
            return sorted(dom | dow)
        return sorted(dom & dow)  # as in day_matches

    def _dom_days(self, year: int, month: int, ndays: int) -> set[int]:
        days = {d for d in self.days if d <= ndays}
        if self.last_day:
            days.add(ndays)
        if self.last_weekday_of_month:
            days.add(_nearest_weekday(year, month, ndays))
        days.update(_nearest_weekday(year, month, n) for n in self.nearest_weekdays if n <= ndays)
        return days

    def _dow_days(self, first_weekday: int, ndays: int) -> set[int]:
        # Sunday = 0 here, as in cron; calendar counts from Monday.
        first = (first_weekday + 1) % 7
        days: set[int] = set()
        for weekday in range(7):
            first_day = (weekday - first) % 7 + 1
            if weekday in self.weekdays:
                days.update(range(first_day, ndays + 1, 7))
            days.update(first_day + 7 * (n - 1) for w, n in self.nth_weekdays if w == weekday)
            if weekday in self.last_weekdays:
                days.add(first_day + 7 * ((ndays - first_day) // 7))
        return {d for d in days if d <= ndays}

    def next_match(self, start: datetime) -> datetime | None:
        """The first naive wall-clock minute >= `start` that matches, or None within 29 years."""
        if start.second or start.microsecond:
            start = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
        year, month = start.year, start.month
        for _ in range(_SEARCH_YEARS * 12):
            first_month = (year, month) == (start.year, start.month)
            for day in self.matching_days(year, month):
                if first_month and day < start.day:
                    continue
                first_day = first_month and day == start.day
                found = self._first_time(first_day, start)
                if found is not None:
                    return datetime(year, month, day, found[0], found[1])
            month += 1
            if month == 13:
                year, month = year + 1, 1
            if year > 9998:
                return None
        return None

    def _first_time(self, same_day: bool, start: datetime) -> tuple[int, int] | None:
        if not same_day:
            return self.hours[0], self.minutes[0]
        i = bisect_left(self.hours, start.hour)
        if i == len(self.hours):
            return None
        hour = self.hours[i]
        if hour > start.hour:
            return hour, self.minutes[0]
        j = bisect_left(self.minutes, start.minute)
        if j < len(self.minutes):
            return hour, self.minutes[j]
        if i + 1 < len(self.hours):
            return self.hours[i + 1], self.minutes[0]
        return None


def _nearest_weekday(year: int, month: int, day: int) -> int:
    """The weekday (Mon-Fri) nearest to `day` without leaving the month (the W rule)."""
    ndays = calendar.monthrange(year, month)[1]
    weekday = date(year, month, day).weekday()  # Monday = 0
    if weekday == 5:  # Saturday: Friday before, unless that leaves the month
        return day - 1 if day > 1 else day + 2
    if weekday == 6:  # Sunday: Monday after, unless that leaves the month
        return day + 1 if day < ndays else day - 2
    return day


def _hash(key: str, field: str) -> int:
    # sha256, not hash(): H must give the same minute in every process and Python run.
    return int.from_bytes(hashlib.sha256(f"{key}\0{field}".encode()).digest()[:8], "big")


@dataclass(slots=True)
class _Parsed:
    values: set[int]
    last_day: bool = False
    last_weekday_of_month: bool = False
    nearest: set[int] | None = None
    nth: set[tuple[int, int]] | None = None
    last_weekdays: set[int] | None = None
    resolved_items: list[str] | None = None


_TOKEN = re.compile(r"\S+")


def parse_cron(text: str, hash_key: str = "") -> CronExpr:
    """Parse a 5-field cron expression or macro; raises CronError with the offset of the fault.

    `hash_key` (the job name) seeds `H`, so different jobs spread over the range.
    """
    tokens = [(m.group(), m.start()) for m in _TOKEN.finditer(text)]
    if not tokens:
        raise CronError(0, "empty cron expression")
    if tokens[0][0].startswith("@"):
        macro, offset = tokens[0]
        if len(tokens) > 1:
            raise CronError(tokens[1][1], f"unexpected text after {macro}")
        if macro.lower() == "@reboot":
            raise CronError(offset, "@reboot is not supported: a schedule needs clock times")
        if macro.lower() not in MACROS:
            raise CronError(
                offset, f"unknown macro {macro!r} (expected one of {', '.join(MACROS)})"
            )
        expanded = parse_cron(MACROS[macro.lower()], hash_key)
        return _replace_text(expanded, text)
    if len(tokens) != 5:
        where = tokens[5][1] if len(tokens) > 5 else len(text)
        raise CronError(
            where,
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(tokens)}",
        )
    parsed = [
        _parse_field(token, offset, field, hash_key)
        for (token, offset), field in zip(tokens, _FIELDS, strict=True)
    ]
    minute, hour, dom, month, dow = parsed
    dom_restricted = not tokens[2][0].startswith(("*", "?"))
    dow_restricted = not tokens[4][0].startswith(("*", "?"))
    expr = CronExpr(
        text=text,
        fields=tuple(  # type: ignore[arg-type]
            ",".join(p.resolved_items) if p.resolved_items else tok
            for p, (tok, _) in zip(parsed, tokens, strict=True)
        ),
        minutes=tuple(sorted(minute.values)),
        hours=tuple(sorted(hour.values)),
        days=frozenset(dom.values),
        last_day=dom.last_day,
        last_weekday_of_month=dom.last_weekday_of_month,
        nearest_weekdays=frozenset(dom.nearest or ()),
        months=frozenset(month.values),
        weekdays=frozenset(v % 7 for v in dow.values),
        nth_weekdays=frozenset(dow.nth or ()),
        last_weekdays=frozenset(dow.last_weekdays or ()),
        dom_restricted=dom_restricted,
        dow_restricted=dow_restricted,
        frequent=tokens[0][0].startswith("*") or tokens[1][0].startswith("*"),
    )
    _check_can_match(expr, tokens[2][1])
    return expr


def _replace_text(expr: CronExpr, text: str) -> CronExpr:
    return replace(expr, text=text)


def _check_can_match(expr: CronExpr, dom_offset: int) -> None:
    # `0 0 30 2 *` is valid syntax that never fires; say so now rather than schedule nothing.
    if expr.dow_restricted or not expr.dom_restricted:
        return
    if expr.last_day or expr.last_weekday_of_month:
        return
    longest = max(calendar.monthrange(2000, m)[1] for m in expr.months)  # 2000: leap year
    if any(d <= longest for d in expr.days | expr.nearest_weekdays):
        return
    day = min(expr.days | expr.nearest_weekdays)
    raise CronError(dom_offset, f"never matches: none of the months has day {day}")


def _parse_field(token: str, offset: int, field: _FieldRange, hash_key: str) -> _Parsed:
    result = _Parsed(values=set())
    items: list[str] = []
    used_h = False
    pos = 0
    for item in token.split(","):
        if not item:
            raise CronError(offset + pos, f"empty item in {field.name} field")
        resolved = _parse_item(item, offset + pos, field, hash_key, result)
        used_h |= resolved is not None
        items.append(resolved if resolved is not None else item)
        pos += len(item) + 1
    if used_h:
        result.resolved_items = items
    return result


def _parse_item(
    item: str, offset: int, field: _FieldRange, hash_key: str, out: _Parsed
) -> str | None:
    """Add one list item's values to `out`; returns the resolved text if the item used H."""
    upper = item.upper()
    if field is _DOM and upper in ("L", "LW"):
        out.last_day |= upper == "L"
        out.last_weekday_of_month |= upper == "LW"
        return None
    if field is _DOM and upper.endswith("W"):
        day = _value(item[:-1], offset, field)
        out.nearest = (out.nearest or set()) | {day}
        return None
    if field is _DOW and "#" in item:
        day_text, _, nth_text = item.partition("#")
        weekday = _value(day_text, offset, field) % 7
        nth_offset = offset + len(day_text) + 1
        if not nth_text.isdigit() or not 1 <= int(nth_text) <= 5:
            raise CronError(nth_offset, f"'#' needs a week number 1-5, got {nth_text!r}")
        out.nth = (out.nth or set()) | {(weekday, int(nth_text))}
        return None
    if field is _DOW and len(item) > 1 and upper.endswith("L"):
        out.last_weekdays = (out.last_weekdays or set()) | {_value(item[:-1], offset, field) % 7}
        return None

    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        step_offset = offset + len(base) + 1
        if not step_text.isdigit():
            raise CronError(step_offset, f"step {step_text!r} in {field.name} is not a number")
        step = int(step_text)
        if step < 1:
            raise CronError(step_offset, f"step {step} in {field.name} must be at least 1")
        if step > field.hi - field.lo + 1:
            raise CronError(
                step_offset,
                f"step {step} in {field.name} is larger than its range {field.lo}-{field.hi}",
            )
    hi_limit = 6 if field is _DOW else field.hi
    if base.upper().startswith("H"):
        values = _hashed(base, offset, field, step, hash_key)
        out.values |= values
        return ",".join(str(v) for v in sorted(values))
    if base in ("*", "?"):
        if base == "?" and field not in (_DOM, _DOW):
            raise CronError(
                offset, f"'?' is only allowed in day-of-month and day-of-week, not {field.name}"
            )
        lo, hi = field.lo, hi_limit
    elif "-" in base:
        lo_text, _, hi_text = base.partition("-")
        lo = _value(lo_text, offset, field)
        hi = _value(hi_text, offset + len(lo_text) + 1, field)
        if lo > hi:
            raise CronError(offset, f"{field.name} range {base} goes backwards ({lo} > {hi})")
    else:
        lo = _value(base, offset, field)
        # `5/15` means from 5 to the end of the range in steps of 15, as in cronie. The end is
        # 6 for day-of-week, but `7/2` is still Sunday, not an empty set that never fires.
        hi = max(lo, hi_limit) if slash else lo
    out.values |= set(range(lo, hi + 1, step))
    return None


def _hashed(base: str, offset: int, field: _FieldRange, step: int, hash_key: str) -> set[int]:
    lo, hi = field.lo, _H_DOM_HI if field is _DOM else (6 if field is _DOW else field.hi)
    if base.upper() != "H":
        match = re.fullmatch(r"[Hh]\((\d+)-(\d+)\)", base)
        if not match:
            raise CronError(offset, f"H must be 'H', 'H(a-b)' or 'H/step', got {base!r}")
        lo = _value(match.group(1), offset + 2, field)
        hi = _value(match.group(2), offset + 3 + len(match.group(1)), field)
        if lo > hi:
            raise CronError(offset, f"{field.name} range in {base} goes backwards ({lo} > {hi})")
    h = _hash(hash_key, field.name)
    if step == 1:
        return {lo + h % (hi - lo + 1)}
    return set(range(lo + h % step, hi + 1, step))


def _value(text: str, offset: int, field: _FieldRange) -> int:
    if text.isdigit():
        value = int(text)
        if not field.lo <= value <= field.hi:
            raise CronError(offset, f"{field.name} {value} is out of range {field.lo}-{field.hi}")
        return value
    if field.names:
        value_or_none = field.names.get(text.lower())
        if value_or_none is not None:
            return value_or_none
        raise CronError(
            offset,
            f"{text!r} is not a {field.name}: use {field.lo}-{field.hi} or a name such as "
            f"{', '.join(list(field.names)[:3])}",
        )
    raise CronError(offset, f"{text!r} is not a valid {field.name} ({field.lo}-{field.hi})")
