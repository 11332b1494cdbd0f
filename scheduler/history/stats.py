"""`stats`: per job, over the runs created since an instant, runs, successes, failures, p50
and p95 duration, and the job's last run and its status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Engine, Integer, Table, func, select

from scheduler.history.models import Run, RunStatus

RUNS = cast(Table, Run.__table__)
FAILED = (RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.LOST)


@dataclass(frozen=True, slots=True)
class JobStats:
    job_name: str
    runs: int
    succeeded: int
    failed: int
    p50_s: float | None
    p95_s: float | None
    last_run_at: datetime | None
    last_status: RunStatus | None

    @property
    def success_rate(self) -> float | None:
        finished = self.succeeded + self.failed
        return self.succeeded / finished if finished else None


def job_stats(engine: Engine, since: datetime | None) -> list[JobStats]:
    """Per job: runs, successes, failures, p50/p95 duration, last run and status.

    One pass over the runs since `since` whatever the number of jobs (an index-only range
    scan of ix_runs_created_stats on PostgreSQL; two passes on other databases), plus one
    index probe per job for its last status.
    """
    where = [RUNS.c.created_at >= since] if since else []
    newest = RUNS.alias("newest")
    # The newest run of a job overall is also its newest in the window (it is at least as
    # new as the job's runs there), so max(created_at) is its time; the status comes from
    # one probe of ix_runs_job_created_id per job.
    last_status = (
        select(newest.c.status)
        .where(newest.c.job_name == RUNS.c.job_name)
        .order_by(newest.c.created_at.desc(), newest.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    job = RUNS.c.job_name
    columns = [
        job,
        func.count(),
        func.sum((RUNS.c.status == RunStatus.SUCCEEDED.value).cast(Integer)),
        func.sum(RUNS.c.status.in_([s.value for s in FAILED]).cast(Integer)),
        func.max(RUNS.c.created_at),
        last_status,
    ]
    durations: dict[str, list[float]] = {}
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # Each job's durations as one unsorted array, sorted here: an ORDER BY inside
            # array_agg would make PostgreSQL sort the whole window (on disk, at 10 M rows).
            every = func.array_agg(RUNS.c.duration_s).filter(RUNS.c.duration_s.is_not(None))
            found = []
            for *row, values in conn.execute(
                select(*columns, every).where(*where).group_by(job).order_by(job)
            ):
                found.append(row)
                durations[row[0]] = values or []
        else:
            found = [
                list(row)
                for row in conn.execute(select(*columns).where(*where).group_by(job).order_by(job))
            ]
            for job_name, duration in conn.execute(
                select(job, RUNS.c.duration_s).where(RUNS.c.duration_s.is_not(None), *where)
            ):
                durations.setdefault(job_name, []).append(duration)
    result = []
    for name, runs, succeeded, failed, last_at, status in found:
        values = sorted(durations.get(name, ()))
        result.append(
            JobStats(
                job_name=name,
                runs=runs,
                succeeded=int(succeeded or 0),
                failed=int(failed or 0),
                p50_s=percentile(values, 0.50),
                p95_s=percentile(values, 0.95),
                last_run_at=last_at,
                last_status=RunStatus(status) if status is not None else None,
            )
        )
    return result


def percentile(values: Sequence[float], q: float) -> float | None:
    """The value of rank round(q * (n - 1)) of sorted `values` (None if empty)."""
    if not values:
        return None
    index = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return values[index]
