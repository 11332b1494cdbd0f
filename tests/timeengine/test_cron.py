"""The cron parser: field syntax, the day rules, H, and located errors (SPEC §4, STYLE "Errors")."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from scheduler.timeengine.cron import MACROS, CronError, parse_cron


def days(expr: str, year: int, month: int) -> list[int]:
    return parse_cron(expr).matching_days(year, month)


def next_walls(expr: str, start: str, n: int, hash_key: str = "") -> list[str]:
    """The first `n` naive wall-clock matches at or after `start`, as ISO strings."""
    parsed = parse_cron(expr, hash_key)
    cursor = datetime.fromisoformat(start)
    found = []
    for _ in range(n):
        wall = parsed.next_match(cursor)
        assert wall is not None
        found.append(wall.isoformat())
        cursor = wall.replace(second=1)  # strictly after this match
    return found


# --- minute and hour: numbers, lists, ranges, steps -------------------------------------------


@pytest.mark.parametrize(
    ("expr", "minutes", "hours"),
    [
        ("0 0 * * *", (0,), (0,)),
        ("5,10-12,50-59/4 * * * *", (5, 10, 11, 12, 50, 54, 58), tuple(range(24))),
        ("*/20 */6 * * *", (0, 20, 40), (0, 6, 12, 18)),
        # `7/20` runs from 7 to the end of the range, as in cronie.
        ("7/20 3/8 * * *", (7, 27, 47), (3, 11, 19)),
        ("0 9-17/4 * * *", (0,), (9, 13, 17)),
        ("59 23 * * *", (59,), (23,)),
        ("0,0,30 1,1 * * *", (0, 30), (1,)),
    ],
)
def test_minute_and_hour_fields(
    expr: str, minutes: tuple[int, ...], hours: tuple[int, ...]
) -> None:
    parsed = parse_cron(expr)
    assert parsed.minutes == minutes
    assert parsed.hours == hours


def test_next_match_walks_minutes_hours_and_days() -> None:
    assert next_walls("15,45 9-10 * * *", "2026-03-01T10:30:00", 4) == [
        "2026-03-01T10:45:00",
        "2026-03-02T09:15:00",
        "2026-03-02T09:45:00",
        "2026-03-02T10:15:00",
    ]


def test_next_match_rounds_seconds_up_to_the_next_minute() -> None:
    parsed = parse_cron("* * * * *")
    assert parsed.next_match(datetime(2026, 3, 1, 10, 30, 0)) == datetime(2026, 3, 1, 10, 30)
    assert parsed.next_match(datetime(2026, 3, 1, 10, 30, 0, 1)) == datetime(2026, 3, 1, 10, 31)
    assert parsed.next_match(datetime(2026, 12, 31, 23, 59, 30)) == datetime(2027, 1, 1, 0, 0)


# --- month and day-of-week: names, 7 = Sunday ----------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "months"),
    [
        ("0 0 * jan,jul *", {1, 7}),
        ("0 0 * JAN-Mar *", {1, 2, 3}),
        ("0 0 * jan-dec/6 *", {1, 7}),
        ("0 0 * */3 *", {1, 4, 7, 10}),
        ("0 0 * 12 *", {12}),
    ],
)
def test_month_field(expr: str, months: set[int]) -> None:
    assert parse_cron(expr).months == months


# March 2026: Sunday 1, 8, 15, 22, 29; Monday 2, 9, 16, 23, 30; Friday 6, 13, 20, 27.
@pytest.mark.parametrize(
    ("expr", "march_2026"),
    [
        ("0 0 * * mon", [2, 9, 16, 23, 30]),
        ("0 0 * * MON", [2, 9, 16, 23, 30]),
        ("0 0 * * 0", [1, 8, 15, 22, 29]),
        ("0 0 * * 7", [1, 8, 15, 22, 29]),  # 7 is Sunday too
        ("0 0 * * sun", [1, 8, 15, 22, 29]),
        ("0 0 * * 5-7", [1, 6, 7, 8, 13, 14, 15, 20, 21, 22, 27, 28, 29]),
        ("0 0 * * fri,sat", [6, 7, 13, 14, 20, 21, 27, 28]),
        ("0 0 * * mon-wed/2", [2, 4, 9, 11, 16, 18, 23, 25, 30]),
        ("0 0 * * 7/2", [1, 8, 15, 22, 29]),  # from 7 to the end of the range: Sunday
        ("0 0 * * 5/1", [6, 7, 13, 14, 20, 21, 27, 28]),
        ("0 0 * * 0-7/2", [1, 3, 5, 7, 8, 10, 12, 14, 15, 17, 19, 21, 22, 24, 26, 28, 29, 31]),
    ],
)
def test_day_of_week_field(expr: str, march_2026: list[int]) -> None:
    assert days(expr, 2026, 3) == march_2026


def test_names_and_month_restrict_the_days() -> None:
    # January 2026 starts on a Thursday.
    assert days("0 9 * jan,jul mon-fri", 2026, 1) == [
        1, 2, 5, 6, 7, 8, 9, 12, 13, 14, 15, 16, 19, 20, 21, 22, 23, 26, 27, 28, 29, 30,
    ]  # fmt: skip
    assert days("0 9 * jan,jul mon-fri", 2026, 2) == []


# --- macros --------------------------------------------------------------------------------------


@pytest.mark.parametrize("macro", sorted(MACROS))
def test_macro_is_its_expansion(macro: str) -> None:
    parsed, expanded = parse_cron(macro), parse_cron(MACROS[macro])
    assert parsed.text == macro
    assert (parsed.minutes, parsed.hours, parsed.days, parsed.months, parsed.weekdays) == (
        expanded.minutes,
        expanded.hours,
        expanded.days,
        expanded.months,
        expanded.weekdays,
    )
    assert parsed.frequent == expanded.frequent


@pytest.mark.parametrize(
    ("macro", "expected"),
    [
        # 2026-03-02 is a Monday.
        ("@yearly", ["2027-01-01T00:00:00", "2028-01-01T00:00:00"]),
        ("@annually", ["2027-01-01T00:00:00", "2028-01-01T00:00:00"]),
        ("@monthly", ["2026-04-01T00:00:00", "2026-05-01T00:00:00"]),
        ("@weekly", ["2026-03-08T00:00:00", "2026-03-15T00:00:00"]),
        ("@daily", ["2026-03-03T00:00:00", "2026-03-04T00:00:00"]),
        ("@midnight", ["2026-03-03T00:00:00", "2026-03-04T00:00:00"]),
        ("@hourly", ["2026-03-02T13:00:00", "2026-03-02T14:00:00"]),
        ("@DAILY", ["2026-03-03T00:00:00", "2026-03-04T00:00:00"]),
    ],
)
def test_macro_ticks(macro: str, expected: list[str]) -> None:
    assert next_walls(macro, "2026-03-02T12:30:00", 2) == expected


# --- frequent or fixed-time (SPEC §4: the minute or the hour field starts with `*`) --------------


@pytest.mark.parametrize(
    ("expr", "frequent"),
    [
        ("*/15 * * * *", True),
        ("0 * * * *", True),
        ("0 */2 * * *", True),
        ("* 3 * * *", True),
        ("@hourly", True),
        ("H * * * *", True),
        ("0 2 * * *", False),
        ("0 1-3 * * *", False),
        ("0 0-23 * * *", False),
        ("5,*/20 3 * * *", False),  # the minute field does not *start* with `*`
        ("H H * * *", False),
        ("@daily", False),
        ("0 2 * * */2", False),  # day fields do not count
    ],
)
def test_frequent(expr: str, frequent: bool) -> None:
    assert parse_cron(expr).frequent is frequent


# --- L, W, # -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "year", "month", "expected"),
    [
        ("0 0 L * *", 2024, 2, [29]),
        ("0 0 L * *", 2026, 2, [28]),
        ("0 0 L * *", 2026, 4, [30]),
        ("0 0 1,L * *", 2026, 4, [1, 30]),
        # LW: the last weekday of the month. 31 May 2026 is a Sunday, 31 January a Saturday.
        ("0 0 LW * *", 2026, 5, [29]),
        ("0 0 LW * *", 2026, 1, [30]),
        ("0 0 LW * *", 2026, 8, [31]),
        # nW: the weekday nearest to day n, never leaving the month.
        ("0 0 15W * *", 2026, 8, [14]),  # Saturday 15th -> Friday 14th
        ("0 0 15W * *", 2026, 3, [16]),  # Sunday 15th -> Monday 16th
        ("0 0 15W * *", 2026, 5, [15]),  # Friday: itself
        ("0 0 1W * *", 2026, 8, [3]),  # Saturday 1st -> Monday 3rd, not July
        ("0 0 31W * *", 2026, 5, [29]),  # Sunday 31st -> Friday 29th, not June
        ("0 0 31W * *", 2026, 4, []),  # April has no 31st
        # n#k: the k-th weekday n of the month.
        ("0 0 * * 1#2", 2026, 3, [9]),
        ("0 0 * * mon#1,mon#3", 2026, 3, [2, 16]),
        ("0 0 * * fri#5", 2026, 5, [29]),
        ("0 0 * * fri#5", 2026, 2, []),
        ("0 0 * * 7#1", 2026, 3, [1]),
        # nL: the last weekday n of the month.
        ("0 0 * * 5L", 2026, 3, [27]),
        ("0 0 * * friL", 2026, 5, [29]),
        ("0 0 * * 0L", 2026, 3, [29]),
    ],
)
def test_l_w_hash(expr: str, year: int, month: int, expected: list[int]) -> None:
    assert days(expr, year, month) == expected


def test_29_february_waits_for_a_leap_year() -> None:
    assert next_walls("0 0 29 2 *", "2026-03-01T00:00:00", 2) == [
        "2028-02-29T00:00:00",
        "2032-02-29T00:00:00",
    ]


# --- the day-of-month / day-of-week rule ---------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "year", "month", "expected"),
    [
        # Both restricted: either may match (January 2026: Fridays 2, 9, 16, 23, 30).
        ("0 0 13 * 5", 2026, 1, [2, 9, 13, 16, 23, 30]),
        ("0 0 1,15 * mon", 2026, 3, [1, 2, 9, 15, 16, 23, 30]),
        ("0 0 L * 5L", 2026, 5, [29, 31]),
        # One restricted: only it decides.
        ("0 0 13 * *", 2026, 1, [13]),
        ("0 0 * * 5", 2026, 1, [2, 9, 16, 23, 30]),
        ("0 0 13 * ?", 2026, 1, [13]),
        ("0 0 ? * 5", 2026, 1, [2, 9, 16, 23, 30]),
        # A field that starts with `*` does not make the rule an OR (Vixie cron, cronie, cronsim):
        # its own values still apply, joined with AND. March 2026: Mondays 2, 9, 16, 23, 30.
        ("0 0 */2 * *", 2026, 3, list(range(1, 32, 2))),
        ("0 0 */2 * mon", 2026, 3, [9, 23]),
        ("0 0 1 * */3", 2026, 3, [1]),  # 1 March 2026 is a Sunday
        ("0 0 1 * */3", 2026, 5, []),  # 1 May 2026 is a Friday
        (
            "0 0 * * */2",
            2026,
            3,
            [1, 3, 5, 7, 8, 10, 12, 14, 15, 17, 19, 21, 22, 24, 26, 28, 29, 31],
        ),
    ],
)
def test_day_rule(expr: str, year: int, month: int, expected: list[int]) -> None:
    assert days(expr, year, month) == expected


def test_day_restricted_flags() -> None:
    assert parse_cron("0 0 13 * 5").dom_restricted
    assert parse_cron("0 0 13 * 5").dow_restricted
    assert not parse_cron("0 0 */2 * 5").dom_restricted
    assert not parse_cron("0 0 13 * */2").dow_restricted
    assert not parse_cron("0 0 ? * *").dom_restricted


def test_day_matches_agrees_with_matching_days() -> None:
    parsed = parse_cron("0 0 */2 * mon")
    assert [d for d in range(1, 32) if parsed.day_matches(date(2026, 3, d))] == [9, 23]


# --- H -------------------------------------------------------------------------------------------

# The values below are sha256(f"{job}\0{field}"), first 8 bytes big-endian, modulo the range size,
# plus the range start, as cron.py documents. Literal, so a change of hash moves every job's tick
# and must be deliberate.


def test_h_is_hashed_from_the_job_name() -> None:
    parsed = parse_cron("H H * * *", "nightly-report")
    assert (parsed.minutes, parsed.hours) == ((4,), (23,))
    assert parsed.fields == ("4", "23", "*", "*", "*")
    assert parse_cron("H H * * *", "backup").fields[:2] == ("34", "8")


def test_h_in_every_field_kind() -> None:
    parsed = parse_cron("H(0-29) H(1-5) H * H", "nightly-report")
    assert parsed.fields == ("4", "2", "18", "*", "0")
    assert parse_cron("H/15 * * * *", "nightly-report").minutes == (4, 19, 34, 49)
    assert parse_cron("H/15 * * * *", "backup").minutes == (4, 19, 34, 49)
    assert parse_cron("H/20 * * * *", "backup").minutes == (14, 34, 54)


def test_h_day_of_month_stays_within_28() -> None:
    for i in range(200):
        (day,) = parse_cron("0 0 H * *", f"job-{i}").days
        assert 1 <= day <= 28


def test_h_is_stable() -> None:
    assert parse_cron("H H * * *", "a-job") == parse_cron("H H * * *", "a-job")
    assert parse_cron("H * * * *", "nightly-report").text == "H * * * *"


def test_h_spreads_jobs() -> None:
    minutes = {parse_cron("H * * * *", f"job-{i}").minutes for i in range(20)}
    assert len(minutes) == 16
    hours = {parse_cron("0 H * * *", f"job-{i}").hours for i in range(20)}
    assert len(hours) >= 10


# --- errors: the offset of the fault and what is allowed -----------------------------------------


@pytest.mark.parametrize(
    ("expr", "offset", "message"),
    [
        ("", 0, "empty cron expression"),
        ("   ", 0, "empty cron expression"),
        ("*/0 * * * *", 2, "step 0 in minute must be at least 1"),
        ("0 */x * * *", 4, "step 'x' in hour is not a number"),
        ("0 */25 * * *", 4, "step 25 in hour is larger than its range 0-23"),
        ("61 * * * *", 0, "minute 61 is out of range 0-59"),
        ("0 24 * * *", 2, "hour 24 is out of range 0-23"),
        ("0 0 0 * *", 4, "day-of-month 0 is out of range 1-31"),
        ("0 0 * 13 *", 6, "month 13 is out of range 1-12"),
        ("0 0 * * 1-8", 10, "day-of-week 8 is out of range 0-7"),
        ("0 0,5,75 * * *", 6, "hour 75 is out of range 0-23"),
        ("* * * *", 7, "expected 5 fields (minute hour day-of-month month day-of-week), got 4"),
        (
            "* * * * * *",
            10,
            "expected 5 fields (minute hour day-of-month month day-of-week), got 6",
        ),
        ("0 0 * * 5-1", 8, "day-of-week range 5-1 goes backwards (5 > 1)"),
        ("30-10 * * * *", 0, "minute range 30-10 goes backwards (30 > 10)"),
        ("0 0 * foo *", 6, "'foo' is not a month: use 1-12 or a name such as jan, feb, mar"),
        (
            "0 0 * * mon-fxi",
            12,
            "'fxi' is not a day-of-week: use 0-7 or a name such as sun, mon, tue",
        ),
        ("x * * * *", 0, "'x' is not a valid minute (0-59)"),
        ("0 0 1,,2 * *", 6, "empty item in day-of-month field"),
        ("0 ? * * *", 2, "'?' is only allowed in day-of-month and day-of-week, not hour"),
        ("0 0 * * 1#6", 10, "'#' needs a week number 1-5, got '6'"),
        ("H(30-10) * * * *", 0, "minute range in H(30-10) goes backwards (30 > 10)"),
        ("Hx * * * *", 0, "H must be 'H', 'H(a-b)' or 'H/step', got 'Hx'"),
        ("0 0 30 2 *", 4, "never matches: none of the months has day 30"),
        ("0 0 31 apr,jun,sep,nov *", 4, "never matches: none of the months has day 31"),
        ("0 0 30W 2 *", 4, "never matches: none of the months has day 30"),
        ("@reboot", 0, "@reboot is not supported: a schedule needs clock times"),
        ("@weekly 0", 8, "unexpected text after @weekly"),
        (
            "@fortnightly",
            0,
            "unknown macro '@fortnightly' (expected one of @yearly, @annually, @monthly, "
            "@weekly, @daily, @midnight, @hourly)",
        ),
    ],
)
def test_errors(expr: str, offset: int, message: str) -> None:
    with pytest.raises(CronError) as caught:
        parse_cron(expr)
    assert (caught.value.offset, caught.value.message) == (offset, message)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "expr",
    [
        "0 0 29 2 *",  # leap years
        "0 0 30 2 5",  # day-of-week restricted too: Fridays in February
        "0 0 L 2 *",
        "0 0 29W 2 *",
        "0 0 * * 7",
    ],
)
def test_valid_edges(expr: str) -> None:
    assert parse_cron(expr).text == expr
