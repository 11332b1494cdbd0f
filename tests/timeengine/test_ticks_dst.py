"""Ticks across daylight saving time and other offset changes (SPEC §4), as hand-checked tables.

Each expected instant was worked out from the zone's rules (transition instants confirmed with
zoneinfo), then written as a literal with the offset in force at that instant. Datetimes are
compared as instants.

A cron is frequent if its minute or hour field starts with `*`: it fires at every real instant
whose wall clock matches. Every other cron is fixed-time: matches inside a gap fire once at the
first instant after it, and a repeated wall time fires on its first pass only.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler.timeengine.cron import parse_cron
from scheduler.timeengine.ticks import (
    EPOCH,
    AtSchedule,
    CronSchedule,
    EverySchedule,
    iter_ticks,
    next_every,
    next_ticks,
    resolve_wall_time,
    ticks_between,
)


def iso(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    assert parsed.tzinfo is not None, text
    return parsed


def cron(expr: str, zone: str) -> CronSchedule:
    return CronSchedule(parse_cron(expr), ZoneInfo(zone))


def check_cron(zone: str, expr: str, after: str, expected: list[str]) -> None:
    ticks = next_ticks(cron(expr, zone), iso(after), len(expected) or 1)
    assert ticks == [iso(e) for e in expected]
    assert all(t.tzinfo is UTC for t in ticks)


CRON_FIELDS = ("expr", "after", "expected")


# America/New_York 2026: 02:00 -> 03:00 on 8 March (07:00Z); 02:00 -> 01:00 on 1 November (06:00Z).
@pytest.mark.parametrize(
    CRON_FIELDS,
    [
        # Spring forward: 02:00-02:59 never happens; in the gap means the first instant after.
        ("30 2 * * *", "2026-03-08T00:00:00-05:00",
         ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]),
        ("0 2 * * *", "2026-03-07T12:00:00-05:00",
         ["2026-03-08T03:00:00-04:00", "2026-03-09T02:00:00-04:00"]),  # the gap's first minute
        ("59 2 * * *", "2026-03-08T01:59:00-05:00",
         ["2026-03-08T03:00:00-04:00"]),  # the gap's last minute
        # Four matches in the gap: one tick.
        ("0,15,30,45 2 * * *", "2026-03-08T01:50:00-05:00",
         ["2026-03-08T03:00:00-04:00", "2026-03-09T02:00:00-04:00"]),
        # Gap ticks and 03:00 are one instant.
        ("0,30 2,3 * * *", "2026-03-08T01:50:00-05:00",
         ["2026-03-08T03:00:00-04:00", "2026-03-08T03:30:00-04:00", "2026-03-09T02:00:00-04:00"]),
        ("59 1 * * *", "2026-03-08T00:00:00-05:00",
         ["2026-03-08T01:59:00-05:00", "2026-03-09T01:59:00-04:00"]),  # just before the gap
        ("0 3 * * *", "2026-03-08T00:00:00-05:00",
         ["2026-03-08T03:00:00-04:00", "2026-03-09T03:00:00-04:00"]),
        ("30 2 * * *", "2026-03-08T03:00:00-04:00",
         ["2026-03-09T02:30:00-04:00"]),  # after = the gap tick itself
        ("30 2 * * *", "2026-03-08T01:59:59.999999-05:00", ["2026-03-08T03:00:00-04:00"]),
        ("30 2 8 3 *", "2026-03-01T00:00:00-05:00",
         ["2026-03-08T03:00:00-04:00", "2027-03-08T02:30:00-05:00"]),
        # Frequent: 02:00, 02:30 never happen.
        ("*/30 * * * *", "2026-03-08T01:00:00-05:00",
         ["2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T03:30:00-04:00"]),
        ("0 * * * *", "2026-03-08T00:30:00-05:00",
         ["2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00"]),
        ("@hourly", "2026-03-08T00:30:00-05:00",
         ["2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00"]),
        ("0 */2 * * *", "2026-03-08T00:30:00-05:00",
         ["2026-03-08T04:00:00-04:00", "2026-03-08T06:00:00-04:00"]),  # frequent: no tick for 02:00
        # Frequent: the whole hour is skipped.
        ("* 2 * * *", "2026-03-08T00:00:00-05:00",
         ["2026-03-09T02:00:00-04:00", "2026-03-09T02:01:00-04:00"]),
        # Fall back: 01:00-01:59 happens twice, first EDT (-04:00) then EST (-05:00).
        ("30 1 * * *", "2026-11-01T00:00:00-04:00",
         ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]),  # first pass only
        ("30 1 * * *", "2026-11-01T01:45:00-04:00",
         ["2026-11-02T01:30:00-05:00"]),  # no second pass
        ("30 1 * * *", "2026-11-01T01:10:00-05:00",
         ["2026-11-02T01:30:00-05:00"]),  # after is in the second pass
        ("0,30 1 * * *", "2026-11-01T00:00:00-04:00",
         ["2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-02T01:00:00-05:00"]),
        # Fixed-time although hourly.
        ("0 1-3 * * *", "2026-11-01T00:00:00-04:00",
         ["2026-11-01T01:00:00-04:00", "2026-11-01T02:00:00-05:00", "2026-11-01T03:00:00-05:00"]),
        ("30 2 * * *", "2026-11-01T00:00:00-04:00",
         ["2026-11-01T02:30:00-05:00", "2026-11-02T02:30:00-05:00"]),  # 02:30 happens once
        ("*/30 * * * *", "2026-11-01T00:45:00-04:00",
         ["2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T01:00:00-05:00",
          "2026-11-01T01:30:00-05:00", "2026-11-01T02:00:00-05:00"]),  # frequent: both passes
        # After late in the first pass.
        ("*/30 * * * *", "2026-11-01T01:45:00-04:00",
         ["2026-11-01T01:00:00-05:00", "2026-11-01T01:30:00-05:00", "2026-11-01T02:00:00-05:00"]),
        ("*/30 * * * *", "2026-11-01T01:00:00-04:00",
         ["2026-11-01T01:30:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T01:30:00-05:00"]),
        ("*/30 * * * *", "2026-11-01T01:15:00-05:00",
         ["2026-11-01T01:30:00-05:00", "2026-11-01T02:00:00-05:00"]),  # after in the second pass
        ("0 * * * *", "2026-11-01T00:30:00-04:00",
         ["2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"]),
        ("@hourly", "2026-11-01T00:30:00-04:00",
         ["2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"]),
        ("15 * * * *", "2026-11-01T01:20:00-04:00",
         ["2026-11-01T01:15:00-05:00", "2026-11-01T02:15:00-05:00"]),
        ("* 1 * * *", "2026-11-01T01:58:30-04:00",
         ["2026-11-01T01:59:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T01:01:00-05:00"]),
    ],
)  # fmt: skip
def test_new_york(expr: str, after: str, expected: list[str]) -> None:
    check_cron("America/New_York", expr, after, expected)


# Europe/London 2026: 01:00 -> 02:00 on 29 March (01:00Z); 02:00 -> 01:00 on 25 October (01:00Z).
@pytest.mark.parametrize(
    CRON_FIELDS,
    [
        # In the gap: first instant after.
        ("30 1 * * *", "2026-03-29T00:00:00+00:00",
         ["2026-03-29T02:00:00+01:00", "2026-03-30T01:30:00+01:00"]),
        ("0 1 * * *", "2026-03-29T00:00:00+00:00", ["2026-03-29T02:00:00+01:00"]),
        ("15,45 * * * *", "2026-03-29T00:50:00+00:00",
         ["2026-03-29T02:15:00+01:00", "2026-03-29T02:45:00+01:00"]),
        ("30 1 * * *", "2026-10-25T00:00:00+01:00",
         ["2026-10-25T01:30:00+01:00", "2026-10-26T01:30:00+00:00"]),  # repeated: first pass only
        ("0 2 * * *", "2026-10-25T00:00:00+01:00",
         ["2026-10-25T02:00:00+00:00", "2026-10-26T02:00:00+00:00"]),  # 02:00 BST never comes
        ("15,45 * * * *", "2026-10-25T00:50:00+01:00",
         ["2026-10-25T01:15:00+01:00", "2026-10-25T01:45:00+01:00", "2026-10-25T01:15:00+00:00",
          "2026-10-25T01:45:00+00:00", "2026-10-25T02:15:00+00:00"]),
    ],
)  # fmt: skip
def test_london(expr: str, after: str, expected: list[str]) -> None:
    check_cron("Europe/London", expr, after, expected)


# Europe/Dublin 2026: 01:00 -> 02:00 on 29 March (01:00Z); 02:00 -> 01:00 on 25 October (01:00Z).
# Dublin's zoneinfo has IST (+01:00) as standard time and GMT as a negative DST in winter; the wall
# clock moves exactly as London's, and so must the ticks.
@pytest.mark.parametrize(
    CRON_FIELDS,
    [
        ("30 1 * * *", "2026-03-29T00:00:00+00:00",
         ["2026-03-29T02:00:00+01:00", "2026-03-30T01:30:00+01:00"]),
        ("0,20,40 1 * * *", "2026-03-29T00:00:00+00:00",
         ["2026-03-29T02:00:00+01:00", "2026-03-30T01:00:00+01:00"]),
        ("@hourly", "2026-03-29T00:30:00+00:00",
         ["2026-03-29T02:00:00+01:00", "2026-03-29T03:00:00+01:00"]),
        ("30 1 * * *", "2026-10-25T00:00:00+01:00",
         ["2026-10-25T01:30:00+01:00", "2026-10-26T01:30:00+00:00"]),
        ("*/30 * * * *", "2026-10-25T00:45:00+01:00",
         ["2026-10-25T01:00:00+01:00", "2026-10-25T01:30:00+01:00", "2026-10-25T01:00:00+00:00",
          "2026-10-25T01:30:00+00:00", "2026-10-25T02:00:00+00:00"]),
    ],
)  # fmt: skip
def test_dublin(expr: str, after: str, expected: list[str]) -> None:
    check_cron("Europe/Dublin", expr, after, expected)


# Australia/Lord_Howe 2026, a 30-minute shift: 02:00 -> 01:30 on 5 April (+11:00 -> +10:30, 15:00Z
# on 4 April); 02:00 -> 02:30 on 4 October (+10:30 -> +11:00, 15:30Z on 3 October).
@pytest.mark.parametrize(
    CRON_FIELDS,
    [
        ("15 2 * * *", "2026-10-04T00:00:00+10:30",
         ["2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"]),  # in the gap
        ("0,10,20 2 * * *", "2026-10-04T00:00:00+10:30",
         ["2026-10-04T02:30:00+11:00", "2026-10-05T02:00:00+11:00"]),  # three matches, one tick
        ("40 2 * * *", "2026-10-04T00:00:00+10:30",
         ["2026-10-04T02:40:00+11:00"]),  # after the gap: on time
        # 02:00 and 02:15 never happen.
        ("*/15 * * * *", "2026-10-04T01:50:00+10:30",
         ["2026-10-04T02:30:00+11:00", "2026-10-04T02:45:00+11:00"]),
        ("0 * * * *", "2026-10-04T01:30:00+10:30", ["2026-10-04T03:00:00+11:00"]),
        ("45 1 * * *", "2026-04-05T00:00:00+11:00",
         ["2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"]),  # first pass only
        ("15 1 * * *", "2026-04-05T00:00:00+11:00",
         ["2026-04-05T01:15:00+11:00", "2026-04-06T01:15:00+10:30"]),  # 01:15 is not repeated
        ("*/15 * * * *", "2026-04-05T01:20:00+11:00",
         ["2026-04-05T01:30:00+11:00", "2026-04-05T01:45:00+11:00", "2026-04-05T01:30:00+10:30",
          "2026-04-05T01:45:00+10:30", "2026-04-05T02:00:00+10:30"]),
        ("0 * * * *", "2026-04-05T00:30:00+11:00",
         ["2026-04-05T01:00:00+11:00", "2026-04-05T02:00:00+10:30"]),  # 01:00 is before the overlap
    ],
)  # fmt: skip
def test_lord_howe(expr: str, after: str, expected: list[str]) -> None:
    check_cron("Australia/Lord_Howe", expr, after, expected)


# America/Santiago 2018, transitions at midnight: 24:00 -> 23:00 on 12 May (-03:00 -> -04:00,
# 03:00Z on 13 May); 24:00 -> 01:00 on 12 August (-04:00 -> -03:00, 04:00Z).
@pytest.mark.parametrize(
    CRON_FIELDS,
    [
        ("0 0 * * *", "2018-08-11T12:00:00-04:00",
         ["2018-08-12T01:00:00-03:00", "2018-08-13T00:00:00-03:00"]),  # midnight never comes
        ("@daily", "2018-08-11T12:00:00-04:00",
         ["2018-08-12T01:00:00-03:00", "2018-08-13T00:00:00-03:00"]),
        ("30 0 * * *", "2018-08-11T12:00:00-04:00",
         ["2018-08-12T01:00:00-03:00", "2018-08-13T00:30:00-03:00"]),
        ("0 0 12 8 *", "2018-08-01T00:00:00-04:00",
         ["2018-08-12T01:00:00-03:00"]),  # the date itself has no midnight
        ("0 * * * *", "2018-08-11T22:30:00-04:00",
         ["2018-08-11T23:00:00-04:00", "2018-08-12T01:00:00-03:00", "2018-08-12T02:00:00-03:00"]),
        ("30 23 * * *", "2018-05-12T12:00:00-03:00",
         ["2018-05-12T23:30:00-03:00", "2018-05-13T23:30:00-04:00"]),  # first pass only
        # 13 May's midnight happens once.
        ("0 0 * * *", "2018-05-12T12:00:00-03:00",
         ["2018-05-13T00:00:00-04:00", "2018-05-14T00:00:00-04:00"]),
        ("*/30 * * * *", "2018-05-12T22:45:00-03:00",
         ["2018-05-12T23:00:00-03:00", "2018-05-12T23:30:00-03:00", "2018-05-12T23:00:00-04:00",
          "2018-05-12T23:30:00-04:00", "2018-05-13T00:00:00-04:00"]),
    ],
)  # fmt: skip
def test_santiago(expr: str, after: str, expected: list[str]) -> None:
    check_cron("America/Santiago", expr, after, expected)


# America/Sao_Paulo 2018, transitions at midnight: 24:00 -> 23:00 on 17 February (-02:00 -> -03:00,
# 02:00Z on 18 February); 24:00 -> 01:00 on 4 November (-03:00 -> -02:00, 03:00Z).
@pytest.mark.parametrize(
    CRON_FIELDS,
    [
        ("0 0 * * *", "2018-11-03T12:00:00-03:00",
         ["2018-11-04T01:00:00-02:00", "2018-11-05T00:00:00-02:00"]),
        ("0 0 4 11 *", "2018-11-01T00:00:00-03:00", ["2018-11-04T01:00:00-02:00"]),
        ("*/20 * * * *", "2018-11-03T23:30:00-03:00",
         ["2018-11-03T23:40:00-03:00", "2018-11-04T01:00:00-02:00", "2018-11-04T01:20:00-02:00"]),
        ("30 23 * * *", "2018-02-17T12:00:00-02:00",
         ["2018-02-17T23:30:00-02:00", "2018-02-18T23:30:00-03:00"]),  # first pass only
        ("30 23 * * *", "2018-02-17T23:45:00-02:00",
         ["2018-02-18T23:30:00-03:00"]),  # no second pass
        ("0 23 * * *", "2018-02-17T23:15:00-03:00",
         ["2018-02-18T23:00:00-03:00"]),  # after in the second pass
        ("0 * * * *", "2018-02-17T22:30:00-02:00",
         ["2018-02-17T23:00:00-02:00", "2018-02-17T23:00:00-03:00", "2018-02-18T00:00:00-03:00"]),
    ],
)  # fmt: skip
def test_sao_paulo(expr: str, after: str, expected: list[str]) -> None:
    check_cron("America/Sao_Paulo", expr, after, expected)


# Pacific/Apia 2011: 30 December never happens. 23:59:59 on the 29th (-10:00) is followed by 00:00
# on the 31st (+14:00), at 10:00Z on 30 December. January 2012 is still on +14:00 (DST).
@pytest.mark.parametrize(
    CRON_FIELDS,
    [
        ("0 12 * * *", "2011-12-29T13:00:00-10:00",
         ["2011-12-31T00:00:00+14:00", "2011-12-31T12:00:00+14:00"]),
        ("0 9,12,18 * * *", "2011-12-29T20:00:00-10:00",
         ["2011-12-31T00:00:00+14:00", "2011-12-31T09:00:00+14:00"]),  # a day of matches, one tick
        # The 30th's and the 31st's midnight are one instant.
        ("0 0 * * *", "2011-12-29T12:00:00-10:00",
         ["2011-12-31T00:00:00+14:00", "2012-01-01T00:00:00+14:00"]),
        ("0 0 30 * *", "2011-12-01T00:00:00-10:00",
         ["2011-12-31T00:00:00+14:00", "2012-01-30T00:00:00+14:00"]),
        ("0 * * * *", "2011-12-29T22:30:00-10:00",
         ["2011-12-29T23:00:00-10:00", "2011-12-31T00:00:00+14:00", "2011-12-31T01:00:00+14:00"]),
        ("*/30 * 30 12 *", "2011-12-29T00:00:00-10:00",
         ["2012-12-30T00:00:00+14:00"]),  # frequent: no tick for a day that never happens
    ],
)  # fmt: skip
def test_apia(expr: str, after: str, expected: list[str]) -> None:
    check_cron("Pacific/Apia", expr, after, expected)


# Asia/Kolkata: +05:30 all year, no transitions; other zones' transition dates are ordinary days.
@pytest.mark.parametrize(
    CRON_FIELDS,
    [
        ("30 2 * * *", "2026-03-08T00:00:00+05:30",
         ["2026-03-08T02:30:00+05:30", "2026-03-09T02:30:00+05:30"]),
        ("30 1 * * *", "2026-11-01T00:00:00+05:30",
         ["2026-11-01T01:30:00+05:30", "2026-11-02T01:30:00+05:30"]),
        ("*/30 * * * *", "2026-03-29T00:45:00+05:30",
         ["2026-03-29T01:00:00+05:30", "2026-03-29T01:30:00+05:30", "2026-03-29T02:00:00+05:30"]),
        ("0 0 1 * *", "2026-12-15T00:00:00+05:30",
         ["2027-01-01T00:00:00+05:30", "2027-02-01T00:00:00+05:30"]),
    ],
)  # fmt: skip
def test_kolkata(expr: str, after: str, expected: list[str]) -> None:
    check_cron("Asia/Kolkata", expr, after, expected)


# --- every: anchor + k * interval in real elapsed time -------------------------------------------


@pytest.mark.parametrize(
    ("interval", "anchor", "after", "expected"),
    [
        # America/New_York 2026: 02:00 -> 03:00 on 8 March; 02:00 -> 01:00 on 1 November.
        # Hourly from the epoch is every whole UTC hour, whatever the wall clock does.
        (timedelta(hours=1), None, "2026-03-08T00:30:00-05:00",
         ["2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00"]),
        (timedelta(hours=1), None, "2026-11-01T00:30:00-04:00",
         ["2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"]),
        # 90 minutes divides a day, so the epoch grid is 00:00, 01:30, 03:00 ... UTC.
        (timedelta(minutes=90), None, "2026-03-08T00:00:00-05:00",
         ["2026-03-08T01:00:00-05:00", "2026-03-08T03:30:00-04:00", "2026-03-08T05:00:00-04:00"]),
        (timedelta(minutes=90), None, "2026-11-01T00:00:00-04:00",
         ["2026-11-01T00:30:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:30:00-05:00"]),
        # A day is 24 real hours: anchored at 09:00 EST, the tick moves to 10:00 EDT.
        (timedelta(days=1), "2026-03-07T09:00:00-05:00", "2026-03-07T12:00:00-05:00",
         ["2026-03-08T10:00:00-04:00", "2026-03-09T10:00:00-04:00"]),
        # Before the anchor: the anchor.
        (timedelta(days=1), "2026-03-07T09:00:00-05:00", "2026-01-01T00:00:00-05:00",
         ["2026-03-07T09:00:00-05:00", "2026-03-08T10:00:00-04:00"]),
        # Australia/Lord_Howe 2026: 02:00 -> 02:30 on 4 October (15:30Z on 3 October).
        (timedelta(minutes=30), None, "2026-10-04T01:40:00+10:30",
         ["2026-10-04T02:30:00+11:00", "2026-10-04T03:00:00+11:00"]),
        # Pacific/Apia 2011: 30 December skipped (10:00Z). Daily from the epoch is 00:00Z.
        (timedelta(days=1), None, "2011-12-29T12:00:00-10:00",
         ["2011-12-29T14:00:00-10:00", "2011-12-31T14:00:00+14:00"]),
        (timedelta(seconds=1), "2026-03-08T06:59:59+00:00", "2026-03-08T01:59:58-05:00",
         ["2026-03-08T01:59:59-05:00", "2026-03-08T03:00:00-04:00"]),
    ],
)  # fmt: skip
def test_every(interval: timedelta, anchor: str | None, after: str, expected: list[str]) -> None:
    schedule = EverySchedule(interval, iso(anchor)) if anchor else EverySchedule(interval)
    assert next_ticks(schedule, iso(after), len(expected)) == [iso(e) for e in expected]


def test_every_anchor_resolved_from_the_wall_clock() -> None:
    # America/New_York 2026: 02:00 -> 03:00 on 8 March. A naive `start` of 02:30 in the gap
    # anchors at the first instant after it (SPEC §4).
    tz = ZoneInfo("America/New_York")
    anchor_at = resolve_wall_time(datetime(2026, 3, 8, 2, 30), tz)
    schedule = EverySchedule(timedelta(hours=12), anchor_at)
    assert next_ticks(schedule, iso("2026-03-08T00:00:00-05:00"), 2) == [
        iso("2026-03-08T03:00:00-04:00"),
        iso("2026-03-08T15:00:00-04:00"),
    ]


def test_next_every_works_in_utc_not_wall_clock() -> None:
    # Europe/London 2026: 02:00 -> 01:00 on 25 October. Subtracting aware datetimes that share a
    # ZoneInfo gives the wall-clock difference; the grid must use elapsed time.
    london = ZoneInfo("Europe/London")
    anchor_at = datetime(2026, 10, 24, 12, 0, tzinfo=london)  # 11:00Z
    after = datetime(2026, 10, 25, 12, 0, tzinfo=london)  # 12:00Z: 25 real hours, 24 on the wall
    # 25 h = 37.5 intervals of 40 min, so the next tick is 11:00Z + 38 * 40 min. By the wall
    # clock it would be 24 h + 40 min after the anchor, 12:40 GMT.
    interval = timedelta(minutes=40)
    assert next_every(anchor_at, interval, after) == iso("2026-10-25T12:20:00+00:00")
    assert next_every(EPOCH, interval, after) == iso("2026-10-25T12:40:00+00:00")


# --- at: one tick, naive times resolved on the wall clock ----------------------------------------


@pytest.mark.parametrize(
    ("zone", "wall", "expected"),
    [
        # America/New_York 2026: 02:00 -> 03:00 on 8 March; 02:00 -> 01:00 on 1 November.
        # In the gap: the first instant after it.
        ("America/New_York", "2026-03-08T02:30:00", "2026-03-08T03:00:00-04:00"),
        ("America/New_York", "2026-03-08T02:00:00", "2026-03-08T03:00:00-04:00"),
        ("America/New_York", "2026-03-08T03:00:00", "2026-03-08T03:00:00-04:00"),
        ("America/New_York", "2026-03-08T01:59:59", "2026-03-08T01:59:59-05:00"),
        # In the overlap: the first pass.
        ("America/New_York", "2026-11-01T01:30:00", "2026-11-01T01:30:00-04:00"),
        ("America/New_York", "2026-11-01T01:00:00", "2026-11-01T01:00:00-04:00"),
        ("America/New_York", "2026-11-01T02:00:00", "2026-11-01T02:00:00-05:00"),
        # Europe/London 2026: 01:00 -> 02:00 on 29 March; 02:00 -> 01:00 on 25 October.
        ("Europe/London", "2026-03-29T01:30:00", "2026-03-29T02:00:00+01:00"),
        ("Europe/London", "2026-10-25T01:30:00", "2026-10-25T01:30:00+01:00"),
        # Europe/Dublin 2026: the same wall-clock moves, with negative DST in winter.
        ("Europe/Dublin", "2026-03-29T01:30:00", "2026-03-29T02:00:00+01:00"),
        ("Europe/Dublin", "2026-10-25T01:30:00", "2026-10-25T01:30:00+01:00"),
        # Australia/Lord_Howe 2026: 02:00 -> 02:30 on 4 October; 02:00 -> 01:30 on 5 April.
        ("Australia/Lord_Howe", "2026-10-04T02:15:00", "2026-10-04T02:30:00+11:00"),
        ("Australia/Lord_Howe", "2026-04-05T01:45:00", "2026-04-05T01:45:00+11:00"),
        # America/Santiago 2018: 24:00 -> 01:00 on 12 August; 24:00 -> 23:00 on 12 May.
        ("America/Santiago", "2018-08-12T00:30:00", "2018-08-12T01:00:00-03:00"),
        ("America/Santiago", "2018-05-12T23:30:00", "2018-05-12T23:30:00-03:00"),
        # America/Sao_Paulo 2018: 24:00 -> 01:00 on 4 November; 24:00 -> 23:00 on 17 February.
        ("America/Sao_Paulo", "2018-11-04T00:00:00", "2018-11-04T01:00:00-02:00"),
        ("America/Sao_Paulo", "2018-02-17T23:00:00", "2018-02-17T23:00:00-02:00"),
        # Pacific/Apia 2011: 30 December skipped.
        ("Pacific/Apia", "2011-12-30T12:00:00", "2011-12-31T00:00:00+14:00"),
        ("Pacific/Apia", "2011-12-29T23:59:00", "2011-12-29T23:59:00-10:00"),
        # Asia/Kolkata: no transitions.
        ("Asia/Kolkata", "2026-03-08T02:30:00", "2026-03-07T21:00:00+00:00"),
    ],
)  # fmt: skip
def test_at(zone: str, wall: str, expected: str) -> None:
    at = resolve_wall_time(datetime.fromisoformat(wall), ZoneInfo(zone))
    assert at == iso(expected)
    assert at.tzinfo is UTC
    schedule = AtSchedule(at)
    assert next_ticks(schedule, at - timedelta(days=1), 3) == [iso(expected)]
    assert next_ticks(schedule, at, 3) == []


# --- start / end windows: start inclusive, end exclusive -----------------------------------------


@pytest.mark.parametrize(
    ("expr", "after", "start", "end", "expected"),
    [
        # America/New_York 2026: 02:00 -> 03:00 on 8 March; 02:00 -> 01:00 on 1 November.
        # Start on the second pass: the first pass of 01:00 is out.
        ("0 * * * *", "2026-11-01T00:00:00-04:00",
         "2026-11-01T01:00:00-05:00", "2026-11-01T03:00:00-05:00",
         ["2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"]),
        # End on the second pass: only the first pass of 01:00 is in.
        ("0 * * * *", "2026-11-01T00:00:00-04:00",
         "2026-11-01T00:30:00-04:00", "2026-11-01T01:00:00-05:00",
         ["2026-11-01T01:00:00-04:00"]),
        # Start at the gap tick: included.
        ("30 2 * * *", "2026-03-07T00:00:00-05:00",
         "2026-03-08T03:00:00-04:00", None,
         ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]),
        # End at the gap tick: excluded.
        ("30 2 * * *", "2026-03-07T00:00:00-05:00",
         None, "2026-03-08T03:00:00-04:00",
         ["2026-03-07T02:30:00-05:00"]),
        ("30 2 * * *", "2026-03-07T00:00:00-05:00",
         "2026-03-07T02:30:00.000001-05:00", "2026-03-09T02:30:00-04:00",
         ["2026-03-08T03:00:00-04:00"]),
        # A start before `after` does not bring back earlier ticks.
        ("30 2 * * *", "2026-03-10T00:00:00-04:00",
         "2026-03-01T00:00:00-05:00", None,
         ["2026-03-10T02:30:00-04:00"]),
    ],
)  # fmt: skip
def test_start_end_window(
    expr: str, after: str, start: str | None, end: str | None, expected: list[str]
) -> None:
    ticks = next_ticks(
        cron(expr, "America/New_York"),
        iso(after),
        5,
        start_at=iso(start) if start else None,
        end_at=iso(end) if end else None,
    )
    # A window with no end still has more ticks: compare the first ones.
    assert ticks[: len(expected)] == [iso(e) for e in expected]
    if end:
        assert len(ticks) == len(expected)


def test_windows_bound_every_and_at() -> None:
    # America/New_York 2026: 02:00 -> 03:00 on 8 March (07:00Z).
    hourly = EverySchedule(timedelta(hours=1))
    after = iso("2026-03-08T00:00:00-05:00")
    start, end = iso("2026-03-08T06:00:00+00:00"), iso("2026-03-08T08:00:00+00:00")
    assert next_ticks(hourly, after, 5, start_at=start, end_at=end) == [
        iso("2026-03-08T01:00:00-05:00"),
        iso("2026-03-08T03:00:00-04:00"),
    ]
    at = AtSchedule(iso("2026-03-08T03:00:00-04:00"))
    assert next_ticks(at, after, 5, start_at=start, end_at=end) == [iso("2026-03-08T07:00:00Z")]
    assert next_ticks(at, after, 5, end_at=iso("2026-03-08T07:00:00Z")) == []
    assert next_ticks(at, after, 5, start_at=iso("2026-03-08T07:00:00.000001Z")) == []


def test_ticks_between_is_after_exclusive_until_inclusive() -> None:
    # America/New_York 2026: 02:00 -> 01:00 on 1 November.
    schedule = cron("*/30 * * * *", "America/New_York")
    ticks = ticks_between(
        schedule, iso("2026-11-01T01:00:00-04:00"), iso("2026-11-01T01:30:00-05:00")
    )
    assert list(ticks) == [
        iso("2026-11-01T01:30:00-04:00"),
        iso("2026-11-01T01:00:00-05:00"),
        iso("2026-11-01T01:30:00-05:00"),
    ]


def test_after_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        list(iter_ticks(cron("0 0 * * *", "UTC"), datetime(2026, 1, 1)))
