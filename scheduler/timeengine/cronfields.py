"""The fields of a cron expression, one token at a time: names, lists, ranges, steps, L W # H.

A token's values do not depend on where it stands in the text, so `parse_field` is cached and
its errors carry offsets relative to the token; cron.py adds the token's own offset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# Literal, not calendar.month_abbr: that follows the locale (LC_TIME) of the process.
_MONTH_NAMES = {
    name: i
    for i, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_DAY_NAMES = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}


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


def _hash(key: str, field: str) -> int:
    # sha256, not hash(): H must give the same minute in every process and Python run.
    # Imported here: only H needs it, and it is a few ms of every cold start.
    import hashlib

    return int.from_bytes(hashlib.sha256(f"{key}\0{field}".encode()).digest()[:8], "big")


@dataclass(slots=True)
class _Parsed:
    values: set[int]
    last_day: bool = False
    last_weekday_of_month: bool = False
    nearest: set[int] | None = None
    nth: set[tuple[int, int]] | None = None
    last_weekdays: set[int] | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Field:
    """One parsed field token; shared by every expression that has the same token.

    Compared by identity: the caches of cron.py key on it, and equal tokens give one object.
    """

    values: frozenset[int]
    ordered: tuple[int, ...]
    last_day: bool
    last_weekday_of_month: bool
    nearest: frozenset[int]
    nth: frozenset[tuple[int, int]]
    last_weekdays: frozenset[int]
    text: str  # the token with H resolved to numbers
    restricted: bool  # a day field that starts with `*` or `?` is not (SPEC §4)


@lru_cache(maxsize=8192)
def parse_field(token: str, index: int, hash_key: str) -> Field:
    """Parse the field at `index` (0 = minute); error offsets are relative to the token."""
    field = _FIELDS[index]
    result = _Parsed(values=set())
    items: list[str] = []
    used_h = False
    pos = 0
    for item in token.split(","):
        if not item:
            raise CronError(pos, f"empty item in {field.name} field")
        resolved = _parse_item(item, pos, field, hash_key, result)
        used_h |= resolved is not None
        items.append(resolved if resolved is not None else item)
        pos += len(item) + 1
    values = {v % 7 for v in result.values} if field is _DOW else result.values
    return Field(
        values=frozenset(values),
        ordered=tuple(sorted(values)),
        last_day=result.last_day,
        last_weekday_of_month=result.last_weekday_of_month,
        nearest=frozenset(result.nearest or ()),
        nth=frozenset(result.nth or ()),
        last_weekdays=frozenset(result.last_weekdays or ()),
        text=",".join(items) if used_h else token,
        restricted=not token.startswith(("*", "?")),
    )


def _parse_item(
    item: str, offset: int, field: _FieldRange, hash_key: str, out: _Parsed
) -> str | None:
    """Add one list item's values to `out`; returns the resolved text if the item used H."""
    if _is_number(item):  # the most common item, and none of the special forms below
        out.values.add(_value(item, offset, field))
        return None
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
        if not _is_number(nth_text) or not 1 <= int(nth_text) <= 5:
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
        if not _is_number(step_text):
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


def _is_number(text: str) -> bool:
    # ASCII only: str.isdigit() is also true of `²`, which int() refuses, and of `١`.
    return text.isascii() and text.isdigit()


def _value(text: str, offset: int, field: _FieldRange) -> int:
    if _is_number(text):
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
