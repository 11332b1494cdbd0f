"""Plain-English descriptions of schedules, for `scheduler jobs`."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from cron_descriptor import Options, get_description

from scheduler.timeengine.ticks import AtSchedule, CronSchedule, EverySchedule, Schedule

_UNITS = (("d", 86400), ("h", 3600), ("m", 60))


def format_duration(duration: timedelta) -> str:
    """`5400s` -> `1h30m`; fractions of a second are kept (`500ms`, `1.5s`)."""
    seconds = duration.total_seconds()
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    parts = []
    whole = int(seconds)
    for unit, size in _UNITS:
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
    rest = seconds - int(seconds) + whole
    if rest:
        parts.append(f"{rest:g}s")
    return "".join(parts)


def describe(schedule: Schedule, tz: ZoneInfo) -> str:
    """A short English sentence for the schedule, e.g. `At 02:00`."""
    match schedule:
        case CronSchedule(expr=expr):
            options = Options()
            options.use_24hour_time_format = True
            # cron-descriptor knows no `H`; describe the values H resolved to for this job.
            return str(get_description(" ".join(expr.fields), options))
        case EverySchedule(interval=interval):
            return f"Every {format_duration(interval)}"
        case AtSchedule(at=at):
            return f"Once, at {at.astimezone(tz).isoformat(timespec='minutes')}"
