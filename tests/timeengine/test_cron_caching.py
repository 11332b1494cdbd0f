"""The parser's caches and the per-month-shape day tables give what a plain parse would.

`parse_cron` caches whole expressions and single field tokens, and the matching days of a month
are looked up by the month's shape (weekday of the 1st, length). These tests pin what the caches
must not change: H still depends on the job name, error offsets still point into the text at
hand, and the days still match a day-by-day reading of the rules.
"""

from __future__ import annotations

import calendar
from datetime import date

import pytest

from scheduler.timeengine.cron import CronError, CronExpr, clear_caches, parse_cron


def reference_days(expr: CronExpr, year: int, month: int) -> list[int]:
    """The matching days of the month, one `date` at a time (SPEC §4, Vixie cron's day rule)."""
    if month not in expr.months:
        return []
    f = expr.day_table.fields
    ndays = calendar.monthrange(year, month)[1]

    def nearest(day: int) -> int:
        weekday = date(year, month, day).weekday()
        if weekday == 5:
            return day - 1 if day > 1 else day + 2
        if weekday == 6:
            return day + 1 if day < ndays else day - 2
        return day

    def dom(d: int) -> bool:
        return (
            d in f.days
            or (f.last_day and d == ndays)
            or (f.last_weekday_of_month and d == nearest(ndays))
            or any(n <= ndays and d == nearest(n) for n in f.nearest_weekdays)
        )

    def dow(d: int) -> bool:
        weekday = (date(year, month, d).weekday() + 1) % 7  # Sunday = 0
        return (
            weekday in f.weekdays
            or (weekday, (d - 1) // 7 + 1) in f.nth_weekdays
            or (weekday in f.last_weekdays and d + 7 > ndays)
        )

    both = f.dom_restricted and f.dow_restricted
    return [d for d in range(1, ndays + 1) if ((dom(d) or dow(d)) if both else (dom(d) and dow(d)))]


@pytest.mark.parametrize(
    "text",
    [
        "0 0 * * *",
        "0 0 13 * 5",
        "0 0 */2 * mon",
        "0 0 1,15,31 * *",
        "0 0 L * *",
        "0 0 LW * *",
        "0 0 1W,15W,31W * *",
        "0 0 * * 1#1,5#5",
        "0 0 * * 0L,5L",
        "0 0 L * 5L",
        "0 0 30 * sat#5",
        "0 0 29 2 *",
        "0 0 ? * 0-6",
        "0 0 13 * 0-6",
        "0 0 1-31 * mon",
        "0 0 */3 * */2",
    ],
)
def test_day_tables_match_a_day_by_day_reading(text: str) -> None:
    # 2000-2027: every weekday of the 1st with every month length, February 29 included.
    expr = parse_cron(text)
    for year in range(2000, 2028):
        for month in range(1, 13):
            assert expr.matching_days(year, month) == reference_days(expr, year, month), (
                year,
                month,
            )


def test_h_still_depends_on_the_job_name() -> None:
    assert parse_cron("H * * * *", "job-1").minutes != parse_cron("H * * * *", "job-2").minutes
    assert parse_cron("0 H(1-5),9 * * *", "job-1").fields[1] == "3,9"
    assert parse_cron("0 H(1-5),9 * * *", "backup").fields[1] == "4,9"
    # Names with an h in them are not H: the job name does not matter to them.
    assert parse_cron("0 0 * * thu", "job-1") is parse_cron("0 0 * * thu", "job-2")


def test_identical_expressions_share_one_parse() -> None:
    assert parse_cron("*/5 * * * *", "a") is parse_cron("*/5 * * * *", "b")
    first = parse_cron("0 9 * * mon-fri")
    clear_caches()
    again = parse_cron("0 9 * * mon-fri")
    assert again is not first
    assert again == first
    assert hash(again) == hash(first)
    assert again != parse_cron("0 9 * * mon-sat")


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("61 * * * *", 0),
        ("  61 * * * *", 2),
        ("0 61 * * *", 2),
        ("0 0 1,2,,3 * *", 8),
        ("0   0 1,2,,3 * *", 10),
    ],
)
def test_errors_point_into_each_text(text: str, offset: int) -> None:
    # The same bad token at another place in another expression: offsets are not cached.
    for _ in range(2):
        with pytest.raises(CronError) as caught:
            parse_cron(text)
        assert caught.value.offset == offset


@pytest.mark.parametrize(
    ("text", "offset", "message"),
    [
        ("² * * * *", 0, "'²' is not a valid minute (0-59)"),
        ("١ * * * *", 0, "'١' is not a valid minute (0-59)"),
        ("*/² * * * *", 2, "step '²' in minute is not a number"),
        ("0 0 * * 1#²", 10, "'#' needs a week number 1-5, got '²'"),
    ],
)
def test_only_ascii_digits_are_numbers(text: str, offset: int, message: str) -> None:
    # str.isdigit() is true of these, and int() refused `²` with a bare ValueError.
    with pytest.raises(CronError) as caught:
        parse_cron(text)
    assert (caught.value.offset, caught.value.message) == (offset, message)
