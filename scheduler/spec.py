"""Value objects of a loaded schedule file: ScheduleFile, JobSpec and their parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.history.statuses import RunStatus
from scheduler.timeengine.ticks import Schedule, iter_ticks, next_ticks


class Misfire(StrEnum):
    SKIP = "skip"
    RUN_ONCE = "run_once"
    RUN_ALL = "run_all"


class Overlap(StrEnum):
    ALLOW = "allow"
    FORBID = "forbid"


# Statuses a notification may be sent for (SPEC §3 `notify.on`): every run status but the
# two a run passes through on its way to one of these.
NOTIFY_STATUSES = tuple(
    status.value for status in RunStatus if status not in (RunStatus.QUEUED, RunStatus.RUNNING)
)

DEFAULT_NOTIFY_ON = ("failed", "timed_out", "lost", "missed")
DEFAULT_MISFIRE_GRACE = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max: int
    backoff: timedelta | None = None
    backoff_max: timedelta | None = None


@dataclass(frozen=True, slots=True)
class NotifySpec:
    on: tuple[str, ...]
    webhook: str


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job of the schedule file, with defaults applied and datetimes resolved to UTC."""

    name: str
    task: str
    schedule: Schedule
    tz: ZoneInfo
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue: str | None = None
    priority: int | None = None
    enabled: bool = True
    misfire: Misfire = Misfire.RUN_ONCE
    misfire_grace: timedelta = DEFAULT_MISFIRE_GRACE
    overlap: Overlap = Overlap.FORBID
    jitter: timedelta | None = None
    expires: timedelta | None = None
    time_limit: timedelta | None = None
    soft_time_limit: timedelta | None = None
    retry: RetryPolicy | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    description: str | None = None
    notify: NotifySpec | None = None
    # Where the job is defined, for log lines; not part of what the job *is*, so moving a
    # job within the file does not make the beat treat it as edited.
    line: int = field(default=0, compare=False)

    def next_ticks(self, after: datetime, n: int = 1) -> list[datetime]:
        """The next `n` ticks strictly after `after`, within the job's start/end window."""
        return next_ticks(self.schedule, after, n, self.start_at, self.end_at)

    def next_tick(self, after: datetime) -> datetime | None:
        """The next tick strictly after `after`, or None if the job has no more."""
        return next(iter_ticks(self.schedule, after, self.start_at, self.end_at), None)


@dataclass(frozen=True, slots=True)
class ScheduleFile:
    path: str
    tz: ZoneInfo
    jobs: dict[str, JobSpec]
    history_keep: timedelta | None = None
