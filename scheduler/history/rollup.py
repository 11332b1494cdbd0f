"""The stats rollup: every job's totals summed up to a few instants (snapshots), so that
`stats` over a long window reads two rows per job, not every run in the window.

A snapshot at instant T holds, per job, sums over its settled runs created before T, from
an arbitrary origin: the runs created in [A, B) sum to totals(B) - totals(A). A snapshot is
built from the nearest one by summing the runs between the two instants, forwards or
backwards, so any window costs two snapshots plus the runs between each end and its
nearest snapshot, read as they are (stats.py).

A run is summed up only if it is settled (a status nothing changes again, SETTLED) when its
time is summed; one that is not (queued, running, retrying, or lost, which a late worker
can still start or finish) goes to stats_pending, and `stats` reads it from `runs`, as it
is then, every time. Each run is thus counted once whenever it settles: late, reaped,
retried. Only a run created after its time was summed would be missed, so a snapshot is
taken SETTLE_LAG after its instant at the earliest, and not past a run that is still
active but younger than ACTIVE_WAIT (older ones go to stats_pending).

Whatever changes these tables (a build, pruning, `purge`) first updates the stats_lock row:
they take turns, and a reader that sees the row change retries. `purge` deletes the
snapshots before its cut (their differences would count runs it deletes).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    Connection,
    Engine,
    delete,
    func,
    insert,
    select,
    update,
)

from scheduler.history.db import insert_ignore
from scheduler.history.durations import Tally, to_bytes
from scheduler.history.summing import (
    ACTIVE,
    LOCK,
    NEWEST_COLUMNS,
    PENDING,
    RUNS,
    SNAPSHOTS,
    TOTALS,
    TOTALS_COLUMNS,
    UNSETTLED,
    Newest,
    add_grouped,
    add_totals,
    grouped,
    pending,
    raw,
)

GRID = timedelta(minutes=15)  # snapshots are taken at whole quarters of an hour (UTC)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
SETTLE_LAG = timedelta(minutes=15)
ACTIVE_WAIT = timedelta(hours=2)
# One build sums a range of at most STEP, or of at most STEP_RUNS runs (it holds the lock).
STEP = timedelta(days=1)
STEP_RUNS = 200_000
KEEP_BUILT = timedelta(hours=2)  # then a snapshot is deleted, unless the latest or a midnight
KEEP_MIDNIGHTS = timedelta(days=35)  # (from which others are built with little to read)
DEFAULT_WINDOW = timedelta(days=7)  # `scheduler stats` without --since


def snapshot_times(conn: Connection) -> list[datetime]:
    """The instants of the snapshots there are, oldest first."""
    return list(conn.execute(select(SNAPSHOTS.c.at).order_by(SNAPSHOTS.c.at)).scalars())


def changes(conn: Connection) -> int:
    """A number that moves whenever the rollup tables change."""
    return int(conn.execute(select(LOCK.c.changes).where(LOCK.c.id == 1)).scalar_one())


def lock(conn: Connection) -> None:
    """Wait for whatever else is changing the rollup tables, then hold them until commit."""
    conn.execute(update(LOCK).where(LOCK.c.id == 1).values(changes=LOCK.c.changes + 1))


def settled_until(conn: Connection, now: datetime) -> datetime:
    """The latest instant a snapshot may be taken at now (see the module docstring)."""
    limit = now - SETTLE_LAG
    oldest = conn.execute(
        select(func.min(RUNS.c.created_at)).where(
            RUNS.c.status.in_(ACTIVE), RUNS.c.created_at >= now - ACTIVE_WAIT
        )
    ).scalar()
    return min(limit, oldest) if oldest is not None else limit


def floor_grid(at: datetime) -> datetime:
    """The latest instant of the GRID at or before `at`."""
    return _EPOCH + (at - _EPOCH) // GRID * GRID


def _midnight(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def build(engine: Engine, at: datetime, now: datetime) -> bool:
    """Take a snapshot at `at` unless there is one; True if this call took it.

    Summed from the nearest snapshot; over more than STEP_RUNS runs, by way of snapshots at
    the midnights in between, each in its own transaction (a build holds the lock).
    """
    with engine.connect() as conn:
        if at in snapshot_times(conn):
            return False  # the usual case, known without taking the lock
    while True:
        with engine.begin() as conn:
            lock(conn)
            times = snapshot_times(conn)
            if at in times:
                return False
            origin = _midnight(min(at, now - DEFAULT_WINDOW))
            if not times and at != origin:
                # The first snapshot, with nothing to sum: at a midnight a window back, so
                # that later ones are summed forwards and know each job's newest run.
                _take(conn, origin, None, now)
                continue
            nearest = min(times, key=lambda t: abs(t - at), default=None)
            if nearest is None or abs(at - nearest) <= STEP or _few_runs(conn, at, nearest):
                _take(conn, at, nearest, now)
                return True
            towards = 1 if at > nearest else -1
            step = _midnight(nearest + towards * STEP if towards > 0 else nearest)
            if step == nearest:
                step -= STEP
            _take(conn, step, nearest, now)


def _few_runs(conn: Connection, one: datetime, other: datetime) -> bool:
    """Whether at most STEP_RUNS runs were created between the two instants."""
    start, end = sorted((one, other))
    some = (
        select(RUNS.c.created_at)  # from the index on created_at alone
        .where(RUNS.c.created_at >= start, RUNS.c.created_at < end)
        .limit(STEP_RUNS + 1)
        .subquery()
    )
    return conn.execute(select(func.count()).select_from(some)).scalar_one() <= STEP_RUNS


def _take(conn: Connection, at: datetime, nearest: datetime | None, now: datetime) -> None:
    tallies: dict[str, Tally] = {}
    newest: dict[str, Newest] = {}
    if nearest is not None:
        there = conn.execute(
            select(*TOTALS_COLUMNS, *NEWEST_COLUMNS).where(TOTALS.c.at == nearest)
        ).all()
        add_totals(tallies, (row[:7] for row in there), 1)
        start, end = sorted((nearest, at))
        sign = 1 if at > nearest else -1
        if sign > 0:  # backwards, the newest run before `at` is not known from here
            newest = {row[0]: row[7:] for row in there if row[7] is not None}
            newest.update(_newest_between(conn, start, end))
        _leave_out_unsettled(conn, start, end)
        # One statement: one view of the runs, whichever settle meanwhile.
        add_grouped(
            tallies,
            conn.execute(
                grouped(
                    [
                        raw(start, end, sign, settled=True),
                        *pending(start, end, -sign, settled=True),
                    ]
                )
            ),
        )
    rows = []
    for job in tallies.keys() | newest.keys():
        tally = tallies.get(job) or Tally()
        last = newest.get(job)
        counted = tally.runs or tally.succeeded or tally.failed or tally.timed or tally.packed
        if not counted and last is None:
            continue  # zero, and nothing known: no row
        rows.append(
            {
                "at": at,
                "job_name": job,
                "runs": tally.runs,
                "succeeded": tally.succeeded,
                "failed": tally.failed,
                "timed": tally.timed,
                "low": tally.low or 0,
                "durations": to_bytes(tally.packed),
                "newest_at": last[0] if last else None,
                "newest_id": last[1] if last else None,
                "newest_status": last[2] if last else None,
            }
        )
    if rows:
        conn.execute(insert(TOTALS), rows)
    conn.execute(insert(SNAPSHOTS).values(at=at, built_at=now))


def _newest_between(conn: Connection, start: datetime, end: datetime) -> dict[str, Newest]:
    """Each job's newest run created in [start, end)."""
    order = func.row_number().over(
        partition_by=RUNS.c.job_name, order_by=(RUNS.c.created_at.desc(), RUNS.c.id.desc())
    )
    ranked = (
        select(RUNS.c.job_name, RUNS.c.created_at, RUNS.c.id, RUNS.c.status, order.label("place"))
        .where(RUNS.c.created_at >= start, RUNS.c.created_at < end)
        .subquery()
    )
    rows = conn.execute(
        select(ranked.c.job_name, ranked.c.created_at, ranked.c.id, ranked.c.status).where(
            ranked.c.place == 1
        )
    )
    return {job: (created_at, run_id, status) for job, created_at, run_id, status in rows}


def _leave_out_unsettled(conn: Connection, start: datetime, end: datetime) -> None:
    # Read, then written from here: an INSERT ... SELECT would lock these rows of `runs`
    # on MariaDB, and workers are updating them.
    found = conn.execute(
        select(RUNS.c.id, RUNS.c.created_at, RUNS.c.job_name).where(
            RUNS.c.status.in_(UNSETTLED), RUNS.c.created_at >= start, RUNS.c.created_at < end
        )
    ).all()
    shared: set[tuple[str, datetime]] = set()
    instants = sorted({created_at for _, created_at, _ in found})
    for first in range(0, len(instants), 500):
        shared.update(
            (job, created_at)
            for job, created_at in conn.execute(
                select(RUNS.c.job_name, RUNS.c.created_at)
                .where(RUNS.c.created_at.in_(instants[first : first + 500]))
                .group_by(RUNS.c.job_name, RUNS.c.created_at)
                .having(func.count() > 1)
            )
        )
    if found:
        conn.execute(
            insert_ignore(conn, PENDING),
            [
                {
                    "run_id": run_id,
                    "created_at": created_at,
                    "job_name": job,
                    "keyed": (job, created_at) not in shared,
                }
                for run_id, created_at, job in found
            ],
        )


def refresh(engine: Engine, now: datetime, windows: Sequence[timedelta] = (DEFAULT_WINDOW,)) -> int:
    """Take the snapshots `stats` over these windows will want; delete unused ones.

    At the latest settled instant of the grid, the midnight before it, and the two grid
    instants around the start of each window. Returns how many snapshots were taken.
    """
    with engine.connect() as conn:
        limit = floor_grid(settled_until(conn, now))
        oldest = oldest_run(conn)
    wanted = set()
    if oldest is not None and oldest < limit:
        wanted = {limit, _midnight(limit)}
        for window in windows:
            start = floor_grid(max(now - window, oldest))
            wanted.update(at for at in (start, start + GRID) if at <= limit)
    taken = sum(build(engine, at, now) for at in sorted(wanted, reverse=True))
    prune(engine, now)
    return taken


def oldest_run(conn: Connection) -> datetime | None:
    """When the oldest run was created (no window needs a snapshot before it)."""
    return conn.execute(select(func.min(RUNS.c.created_at))).scalar()


def prune(engine: Engine, now: datetime) -> int:
    """Delete the snapshots no `stats` is likely to want; returns how many.

    Those built over KEEP_BUILT ago, but the latest, and midnights up to KEEP_MIDNIGHTS old.
    """

    def unwanted(conn: Connection) -> list[datetime]:
        built = conn.execute(select(SNAPSHOTS.c.at, SNAPSHOTS.c.built_at)).all()
        latest = max((at for at, _ in built), default=None)
        return [
            at
            for at, built_at in built
            if built_at < now - KEEP_BUILT
            and at != latest
            and (at != _midnight(at) or at < now - KEEP_MIDNIGHTS)
        ]

    with engine.connect() as conn:
        if not unwanted(conn):
            return 0  # the usual case, known without taking the lock
    with engine.begin() as conn:
        lock(conn)
        old = unwanted(conn)
        for start in range(0, len(old), 500):
            chunk = old[start : start + 500]
            conn.execute(delete(TOTALS).where(TOTALS.c.at.in_(chunk)))
            conn.execute(delete(SNAPSHOTS).where(SNAPSHOTS.c.at.in_(chunk)))
        return len(old)


def forget_before(conn: Connection, before: datetime) -> None:
    """For `purge`, in its transaction before it deletes runs: the snapshots before `before`
    would count the runs it deletes, and the pending runs before it may go."""
    lock(conn)
    conn.execute(delete(TOTALS).where(TOTALS.c.at < before))
    conn.execute(delete(SNAPSHOTS).where(SNAPSHOTS.c.at < before))
    conn.execute(delete(PENDING).where(PENDING.c.created_at < before))
