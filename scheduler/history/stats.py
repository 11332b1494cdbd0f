"""`stats`: per job, over the runs created since an instant, runs, successes, failures, p50
and p95 duration, and the job's last run and its status.

Counts are exact. Over a window that reaches back past the latest snapshot, they come from
the rollup (rollup.py): two snapshots, plus the runs between each end of the window and
its snapshot and the pending runs, read as they are now; p50/p95 then come from duration
buckets, within durations.RELATIVE_ERROR. `exact=True`, or a window too short to reach a
snapshot, reads every run of the window instead (p50/p95 exact; about a second per
million runs in the window).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    String,
    Table,
    func,
    literal,
    select,
    type_coerce,
)

from scheduler.history import rollup, summing
from scheduler.history.durations import RELATIVE_ERROR, Tally
from scheduler.history.models import RunStatus

log = logging.getLogger(__name__)

RUNS: Table = summing.RUNS
# Past these, `stats` takes a snapshot before answering (the beat normally has: rollup.refresh).
MAX_TAIL = timedelta(hours=2)  # of runs after the latest snapshot
MAX_HEAD = timedelta(hours=1)  # between the window's start and its nearest snapshot
_RETRIES = 3  # reads that saw the rollup change under them, before reading every run


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
    # p50_s and p95_s are within this fraction of the true values (0: exact).
    percentile_error: float = 0.0

    @property
    def success_rate(self) -> float | None:
        finished = self.succeeded + self.failed
        return self.succeeded / finished if finished else None


def job_stats(engine: Engine, since: datetime | None, now: datetime, exact: bool) -> list[JobStats]:
    """Per job with runs created since `since`, sorted by job name (see the module doc)."""
    if exact or since is None:
        return exact_stats(engine, since)
    for _ in range(_RETRIES):
        ends = _snapshots_for(engine, since, now)
        if ends is None:
            return exact_stats(engine, since)
        try:
            found = _from_rollup(engine, since, *ends)
        except ValueError as exc:
            # Totals that do not add up (a bug, or tables edited by hand): every run still
            # gives the right answer; logged, as the rollup needs looking at.
            log.warning("stats rollup inconsistent (%s); reading every run instead", exc)
            return exact_stats(engine, since)
        if found is not None:
            return found
    return exact_stats(engine, since)


def _snapshots_for(
    engine: Engine, since: datetime, now: datetime
) -> tuple[datetime, datetime] | None:
    """(snapshot nearest `since`, latest snapshot), taken first if missing or too far; None
    when the window starts after the latest snapshot (a short window: read every run)."""
    with engine.connect() as conn:
        times = rollup.snapshot_times(conn)
        if not times or since < times[0] - MAX_HEAD:
            # No run before the oldest: a window reaching further starts there.
            oldest = rollup.oldest_run(conn)
            if oldest is None:
                return None
            since = max(since, oldest)
    if not times or now - times[-1] > MAX_TAIL:
        with engine.connect() as conn:
            limit = rollup.floor_grid(rollup.settled_until(conn, now))
        if since >= limit:
            return None
        rollup.build(engine, limit, now)
        with engine.connect() as conn:
            times = rollup.snapshot_times(conn)
    latest = times[-1]
    if since >= latest:
        return None
    nearest = min(times, key=lambda at: abs(at - since))
    if abs(nearest - since) > MAX_HEAD:
        at = min(latest, rollup.floor_grid(since + rollup.GRID / 2))
        rollup.build(engine, at, now)
        nearest = at
    return nearest, latest


def _from_rollup(
    engine: Engine, since: datetime, head: datetime, tail: datetime
) -> list[JobStats] | None:
    """The answer from snapshots `head` and `tail`; None if the rollup changed meanwhile."""
    with engine.connect() as conn:
        there = (
            select(func.count())
            .select_from(summing.SNAPSHOTS)
            .where(summing.SNAPSHOTS.c.at.in_(sorted({head, tail})))
            .scalar_subquery()
        )
        before, present = conn.execute(
            select(summing.LOCK.c.changes, there).where(summing.LOCK.c.id == 1)
        ).one()
        if present != len({head, tail}):
            return None  # pruned since chosen
        tallies: dict[str, Tally] = {}
        for at, sign in ((tail, 1), (head, -1)):
            rows = conn.execute(
                select(*summing.TOTALS_COLUMNS).where(summing.TOTALS.c.at == at)
            ).all()
            summing.add_totals(tallies, rows, sign)
        parts = [*summing.pending(max(since, head), tail), summing.raw(tail, None)]
        if since < head:
            parts.append(summing.raw(since, head))
        elif since > head:
            # The settled runs in [head, since) are in the totals; the pending ones are not.
            parts.append(summing.raw(head, since, -1, settled=True))
            parts.extend(summing.pending(head, since, 1, settled=True))
        summing.add_grouped(tallies, conn.execute(summing.grouped(parts)).all())
        jobs = sorted(job for job, tally in tallies.items() if tally.runs)
        newest = _newest(conn, head, tail, jobs)
        if rollup.changes(conn) != before:
            return None
    result = []
    for job in jobs:
        tally = tallies[job]
        if tally.runs < 0 or tally.succeeded < 0 or tally.failed < 0:
            raise ValueError(f"job {job} has negative counts")
        p50, p95 = tally.percentiles(0.50, 0.95)
        last_at, status = newest.get(job, (None, None))
        result.append(
            JobStats(
                job_name=job,
                runs=tally.runs,
                succeeded=tally.succeeded,
                failed=tally.failed,
                p50_s=p50,
                p95_s=p95,
                last_run_at=last_at,
                last_status=RunStatus(status) if status is not None else None,
                percentile_error=RELATIVE_ERROR,
            )
        )
    return result


def _newest(
    conn: Connection, head: datetime, tail: datetime, jobs: Sequence[str]
) -> dict[str, tuple[datetime, str]]:
    """Each job's newest run: (created_at, status)."""
    # Most jobs ran since the latest snapshot: their newest runs are read off the index on
    # created_at (which holds job_name and status), newest first per job.
    order = func.rank().over(partition_by=RUNS.c.job_name, order_by=RUNS.c.created_at.desc())
    recent = (
        select(RUNS.c.job_name, RUNS.c.created_at, _text(RUNS.c.status), order.label("place"))
        .where(RUNS.c.created_at >= tail)
        .subquery()
    )
    found: dict[str, tuple[datetime, str]] = {}
    tied: set[str] = set()
    # Fetched whole (.all()), here and below: row by row costs a driver call per row.
    for job, at, status in conn.execute(
        select(recent.c.job_name, recent.c.created_at, recent.c.status).where(recent.c.place == 1)
    ).all():
        if job in found:
            tied.add(job)  # two runs created at the same instant: the id decides
        found[job] = (at, status)
    # The others as the latest snapshot has them; as they are now if not settled then.
    unsettled: dict[str, str] = {}
    ran = select(RUNS.c.job_name).where(RUNS.c.created_at >= tail)
    for job, at, run_id, status in conn.execute(
        select(
            summing.TOTALS.c.job_name,
            summing.TOTALS.c.newest_at,
            summing.TOTALS.c.newest_id,
            _text(summing.TOTALS.c.newest_status),
        ).where(
            summing.TOTALS.c.at == tail,
            summing.TOTALS.c.newest_at.is_not(None),
            summing.TOTALS.c.job_name.not_in(ran),
        )
    ).all():
        found[job] = (at, status)
        if status not in summing.SETTLED:
            unsettled[run_id] = job
    for start in range(0, len(ids := sorted(unsettled)), 500):
        for run_id, status in conn.execute(
            select(RUNS.c.id, RUNS.c.status).where(RUNS.c.id.in_(ids[start : start + 500]))
        ).all():
            job = unsettled[run_id]
            found[job] = (found[job][0], status)
    # And the rest (ties; jobs the snapshot does not know): one index probe each.
    probe = sorted((set(jobs) - found.keys()) | tied)
    probed: dict[str, tuple[datetime, str]] = {}
    for start in range(0, len(probe), 500):
        chunk = probe[start : start + 500]
        named = (
            select(summing.TOTALS.c.job_name.label("job_name"))
            .where(
                summing.TOTALS.c.at.in_(sorted({head, tail})),
                summing.TOTALS.c.job_name.in_(chunk),
            )
            .distinct()
            .subquery()
        )
        probed.update(_newest_of(conn, named))
    for job in sorted(set(probe) - probed.keys()):
        # In neither snapshot: a job whose only runs are pending, or before the head (rare).
        probed.update(_newest_of(conn, select(literal(job).label("job_name")).subquery()))
    found.update(probed)
    return {job: found[job] for job in jobs if job in found}


def _text(status: Any) -> Any:
    # A status as the string it is stored as: RunStatus(...) is made once per job shown,
    # not once per row read.
    return type_coerce(status, String).label(status.name)


def _newest_of(conn: Connection, named: Any) -> dict[str, tuple[datetime, str]]:
    newest = RUNS.alias("newest")
    # The id alone comes from the index (job_name, created_at, id); then one row by key.
    pick = (
        select(newest.c.id)
        .where(newest.c.job_name == named.c.job_name)
        .order_by(newest.c.created_at.desc(), newest.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    ids = select(pick.label("id")).select_from(named).subquery()
    rows = conn.execute(
        select(RUNS.c.job_name, RUNS.c.created_at, RUNS.c.status).join(ids, RUNS.c.id == ids.c.id)
    ).all()
    return {job: (at, status) for job, at, status in rows}


# -- every run of the window -----------------------------------------------------------


def exact_stats(engine: Engine, since: datetime | None) -> list[JobStats]:
    """Per job, from every run since `since`; p50/p95 exact.

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
        func.sum(RUNS.c.status.in_([s.value for s in summing.FAILED]).cast(Integer)),
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
