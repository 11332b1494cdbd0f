"""Runs summed per job, in SQL and then into durations.Tally: how the rollup's builds
(rollup.py) and `stats`' reads (stats.py) count runs, the same way."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Integer,
    Select,
    String,
    Table,
    and_,
    case,
    func,
    literal,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.sql.elements import ColumnElement

from scheduler.history.durations import FLOOR_S, PER_DOUBLING, ZERO, Tally, pack
from scheduler.history.models import (
    Run,
    RunStatus,
    StatsLock,
    StatsPending,
    StatsSnapshot,
    StatsTotal,
)

RUNS = cast(Table, Run.__table__)
SNAPSHOTS = cast(Table, StatsSnapshot.__table__)
TOTALS = cast(Table, StatsTotal.__table__)
PENDING = cast(Table, StatsPending.__table__)
LOCK = cast(Table, StatsLock.__table__)

# Statuses no write changes again: `lost` is not one (a late worker can still start or
# finish the run), nor are the active ones.
SETTLED = (
    RunStatus.SUCCEEDED,
    RunStatus.FAILED,
    RunStatus.TIMED_OUT,
    RunStatus.REVOKED,
    RunStatus.MISSED,
    RunStatus.SKIPPED,
)
UNSETTLED = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.RETRYING, RunStatus.LOST)
ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.RETRYING)
FAILED = (RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.LOST)
Newest = tuple[datetime, str, str]  # a job's newest run: created_at, id, status


def bucket(duration: ColumnElement[Any]) -> ColumnElement[Any]:
    """durations.bucket_of in SQL (NULL for no duration)."""
    return case(
        (duration.is_(None), null()),
        (
            duration > FLOOR_S,
            func.floor(func.ln(duration) * (PER_DOUBLING / math.log(2))).cast(Integer),
        ),
        else_=ZERO,
    )


def counted(source: Any, sign: int, *where: ColumnElement[bool]) -> Select[Any]:
    """One row per run of `source` (runs or an alias): job, bucket, and counts times `sign`."""
    return select(
        source.c.job_name.label("job_name"),
        bucket(source.c.duration_s).label("bucket"),
        literal(sign, Integer).label("runs"),
        case((source.c.status == RunStatus.SUCCEEDED, sign), else_=0).label("succeeded"),
        case((source.c.status.in_(FAILED), sign), else_=0).label("failed"),
    ).where(*where)


def raw(start: datetime, end: datetime | None, sign: int = 1, settled: bool = False) -> Select[Any]:
    """The runs created in [start, end) (end None: to the end), or only the settled ones."""
    where = [RUNS.c.created_at >= start]
    if end is not None:
        where.append(RUNS.c.created_at < end)
    if settled:
        where.append(RUNS.c.status.in_(SETTLED))
    return counted(RUNS, sign, *where)


def pending(
    start: datetime, end: datetime, sign: int = 1, settled: bool = False
) -> list[Select[Any]]:
    """The runs of stats_pending created in [start, end), as they are now (two parts)."""
    parts = []
    for keyed in (True, False):
        run = RUNS.alias("keyed_run" if keyed else "pending_run")
        where = [
            PENDING.c.created_at >= start,
            PENDING.c.created_at < end,
            PENDING.c.keyed == keyed,
        ]
        if settled:
            where.append(run.c.status.in_(SETTLED))
        found_by = (
            and_(run.c.created_at == PENDING.c.created_at, run.c.job_name == PENDING.c.job_name)
            if keyed
            else run.c.id == PENDING.c.run_id
        )
        parts.append(counted(run, sign, *where).select_from(PENDING.join(run, found_by)))
    return parts


def grouped(parts: Sequence[Select[Any]]) -> Select[Any]:
    """The parts' rows summed per job: runs, successes, failures, and the durations as
    'bucket:count,...' (one string per job reads faster than one row per bucket)."""
    rows = union_all(*parts).subquery()
    per_bucket = (
        select(
            rows.c.job_name,
            rows.c.bucket,
            func.sum(rows.c.runs).label("runs"),
            func.sum(rows.c.succeeded).label("succeeded"),
            func.sum(rows.c.failed).label("failed"),
        )
        .group_by(rows.c.job_name, rows.c.bucket)
        .subquery()
    )
    pair = (
        per_bucket.c.bucket.cast(String) + literal_column("':'") + per_bucket.c.runs.cast(String)
    )  # NULL (skipped) for the runs without a duration
    return select(
        per_bucket.c.job_name,
        func.sum(per_bucket.c.runs),
        func.sum(per_bucket.c.succeeded),
        func.sum(per_bucket.c.failed),
        func.aggregate_strings(pair, ","),
    ).group_by(per_bucket.c.job_name)


def add_grouped(tallies: dict[str, Tally], rows: Iterable[Sequence[Any]]) -> None:
    """Add the rows of `grouped` to each job's tally."""
    for job, runs, succeeded, failed, pairs in rows:
        tally = tallies.get(job)
        if tally is None:
            tally = tallies[job] = Tally()
        numbers = list(map(int, pairs.replace(":", ",").split(","))) if pairs else []
        counts = numbers[1::2]
        low, packed = pack(zip(numbers[::2], counts, strict=True))
        tally.add(int(runs), int(succeeded), int(failed), sum(counts), low, packed)


def add_totals(tallies: dict[str, Tally], rows: Iterable[Sequence[Any]], sign: int) -> None:
    """Add (sign 1) or subtract (-1) the stats_totals rows of a snapshot."""
    for job, runs, succeeded, failed, timed, low, durations in rows:
        tally = tallies.get(job)
        if tally is None:
            tally = tallies[job] = Tally()
        packed = int.from_bytes(durations, "little", signed=True)
        if sign < 0:
            runs, succeeded, failed, timed, packed = -runs, -succeeded, -failed, -timed, -packed
        tally.add(runs, succeeded, failed, timed, low, packed)


TOTALS_COLUMNS = (
    TOTALS.c.job_name,
    TOTALS.c.runs,
    TOTALS.c.succeeded,
    TOTALS.c.failed,
    TOTALS.c.timed,
    TOTALS.c.low,
    TOTALS.c.durations,
)
NEWEST_COLUMNS = (TOTALS.c.newest_at, TOTALS.c.newest_id, TOTALS.c.newest_status)
