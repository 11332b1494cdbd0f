"""HistoryStore: every read and write of the run history.

Claims and run rows are one thing: a tick's run row has a deterministic primary key (see
`run_id_for`), so the INSERT that records it is also the claim. Two beats that race for
the same tick both try the INSERT; the database lets exactly one succeed, and only that
beat publishes the message.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Engine,
    Insert,
    Table,
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.orm import Session

from scheduler.history import queries, rollup
from scheduler.history.db import insert_ignore
from scheduler.history.models import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    Heartbeat,
    JobState,
    Run,
    RunStatus,
    Trigger,
    utcnow,
)
from scheduler.history.queries import RunFilter
from scheduler.history.startpath import (
    PG_FINISH,
    RESULT_LIMIT,
    HeldConnection,
    capped_json,
    clean_text,
    pg_finish_row,
    pg_start_params,
    pg_try_start,
)
from scheduler.history.stats import JobStats, job_stats

# A worker process that has written no heartbeat for this long is taken to be gone
# (workers write one every 10 s).
PROCESS_ALIVE_WITHIN = timedelta(seconds=30)
_SECRET_NAME = re.compile(r"pass(word|wd)?|secret|token|api_?key|auth|credential|private", re.I)
_RUN_ID_NAMESPACE = uuid.UUID("8a7c4c34-0c69-4b68-9d0d-2f1b1f0e6c11")
# Core tables for the hot paths (declarative models type them as FromClause).
RUNS = cast(Table, Run.__table__)
STATES = cast(Table, JobState.__table__)
HEARTBEATS = cast(Table, Heartbeat.__table__)


def run_id_for(job_name: str, tick_at: datetime) -> str:
    """The Celery task id of a tick's run: the same on every beat, a UUID in form."""
    return str(uuid.uuid5(_RUN_ID_NAMESPACE, f"{job_name}|{tick_at.timestamp():.6f}"))


def redact(value: Any) -> Any:
    """A copy of args/kwargs with values under secret-looking names replaced by '***'."""
    if isinstance(value, Mapping):
        return {
            k: "***" if isinstance(k, str) and _SECRET_NAME.search(k) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def cap_result(value: Any) -> Any:
    """The value if its JSON fits in RESULT_LIMIT, else a marker with a preview."""
    return json.loads(capped_json(value))


@dataclass(frozen=True, slots=True)
class NewRun:
    id: str
    job_name: str
    task_name: str
    trigger: Trigger
    status: RunStatus
    tick_at: datetime | None = None
    queue: str | None = None
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] | None = None
    enqueued_at: datetime | None = None


# Built once: a worker records every run through it, and building an UPDATE costs more CPU
# than sending it.
_FINISH = (
    update(RUNS)
    .where(RUNS.c.id == bindparam("run_id"))
    .values(
        {
            name: bindparam(name)
            for name in (
                "status",
                "finished_at",
                "error_type",
                "error_message",
                "traceback",
                "duration_s",
                "result",
            )
        }
    )
)


# A queued (or retrying, or lost) run becomes running; 0 rows: the row decides otherwise.
_START = (
    update(RUNS)
    .where(
        RUNS.c.id == bindparam("run_id"),
        RUNS.c.status.in_([RunStatus.QUEUED, RunStatus.RETRYING, RunStatus.LOST]),
    )
    .values(
        status=RunStatus.RUNNING,
        started_at=bindparam("started_at"),
        worker=bindparam("worker"),
        worker_process=bindparam("worker_process"),
        attempts=RUNS.c.attempts + 1,
        deadline_at=bindparam("deadline_at"),
        enqueued_at=func.coalesce(RUNS.c.enqueued_at, bindparam("started_at")),
        finished_at=None,
    )
)


def _finish_params(
    run_id: str,
    status: RunStatus,
    at: datetime,
    *,
    result: Any = None,
    error_type: str | None = None,
    error_message: str | None = None,
    traceback: str | None = None,
    started_at: datetime | None = None,
) -> dict[str, Any]:
    final = status in FINAL_STATUSES
    return {
        "run_id": run_id,
        "status": status,
        "finished_at": at if final else None,
        "error_type": clean_text(error_type),
        "error_message": clean_text(error_message),
        "traceback": clean_text(traceback),
        "duration_s": (at - started_at).total_seconds() if final and started_at else None,
        "result": cap_result(result) if status is RunStatus.SUCCEEDED else None,
    }


_INSERTS: dict[str, Insert] = {}
_STARTED_COLUMNS = (
    "id",
    "job_name",
    "task_name",
    "trigger",
    "status",
    "created_at",
    "enqueued_at",
    "started_at",
    "attempts",
    "worker",
    "worker_process",
    "queue",
    "args",
    "kwargs",
    "deadline_at",
)


def _insert_started(conn: Connection, row: dict[str, Any]) -> bool:
    """INSERT-or-ignore of a run first heard of when it starts; True if it was inserted."""
    name = conn.dialect.name
    if name not in _INSERTS:
        stmt = insert_ignore(conn, RUNS).values(
            {column: bindparam(column) for column in _STARTED_COLUMNS}
        )
        # As in claim_many: rowcount is not reliable through psycopg, RETURNING is.
        _INSERTS[name] = stmt.returning(RUNS.c.id) if conn.dialect.insert_returning else stmt
    result = conn.execute(_INSERTS[name], row)
    if conn.dialect.insert_returning:
        return result.first() is not None
    return result.rowcount == 1


def _row(run: NewRun, now: datetime) -> dict[str, Any]:
    return {
        "id": run.id,
        "job_name": run.job_name,
        "task_name": run.task_name,
        "trigger": run.trigger,
        "status": run.status,
        "tick_at": run.tick_at,
        "created_at": now,
        "enqueued_at": run.enqueued_at,
        "finished_at": now if run.status in FINAL_STATUSES else None,
        "attempts": 0,
        "queue": run.queue,
        "args": redact(list(run.args)),
        "kwargs": redact(dict(run.kwargs or {})),
    }


class HistoryStore:
    """Reads and writes of runs, job state and heartbeats; each method is one transaction."""

    def __init__(self, engine: Engine, *, hold_start_connection: bool = False) -> None:
        """`hold_start_connection`: keep a connection for `record_started` and one for
        `record_finished_many` (startpath.py), the worker's writes; only for an engine made
        with `make_engine(..., per_statement=True)` (autocommit)."""
        self.engine = engine
        self._held = HeldConnection(engine) if hold_start_connection else None
        # Written by the WriteBuffer's thread, while the task thread uses `_held`.
        self._held_outcomes = HeldConnection(engine) if hold_start_connection else None
        # Plain SQL for the common cases, on PostgreSQL (startpath.py).
        self._plain = hold_start_connection and engine.dialect.name == "postgresql"

    # -- beat ---------------------------------------------------------------------------

    def claim(self, run: NewRun, now: datetime) -> bool:
        """Insert a run row if its id is new; True if this call claimed it."""
        return run.id in self.claim_many([run], now)

    def claim_many(self, runs: Sequence[NewRun], now: datetime) -> set[str]:
        """Insert the run rows whose ids are new, in one transaction; returns their ids.

        Ticks of rows claimed here advance their job's `job_state.last_tick_at`.
        """
        if not runs:
            return set()
        rows = [_row(run, now) for run in runs]
        with self.engine.begin() as conn:
            stmt = insert_ignore(conn, RUNS)
            if conn.dialect.insert_returning:
                # rowcount of INSERT ... ON CONFLICT DO NOTHING is not reliable through every
                # driver (psycopg reports 0 for an inserted row), so ask for the keys back.
                claimed = set(conn.execute(stmt.returning(RUNS.c.id), rows).scalars())
            else:  # MySQL/MariaDB: INSERT IGNORE one row at a time, still one transaction
                claimed = {row["id"] for row in rows if conn.execute(stmt, row).rowcount == 1}
            newest: dict[str, datetime] = {}
            for run in runs:
                if run.id in claimed and run.tick_at is not None:
                    newest[run.job_name] = max(newest.get(run.job_name, run.tick_at), run.tick_at)
            if newest:
                self._advance_state(conn, newest, now)
        return claimed

    def unclaim(self, run_ids: Sequence[str], now: datetime) -> set[str]:
        """Delete these claimed runs if they were never sent; returns the ids deleted.

        Their jobs' `job_state.last_tick_at` goes back to `now` if it was later, as if those
        ticks had never been claimed. A run sent or settled meanwhile stays as it is.
        """
        if not run_ids:
            return set()
        unsent = (RUNS.c.status == RunStatus.QUEUED.value, RUNS.c.enqueued_at.is_(None))
        with self.engine.begin() as conn:
            found: dict[str, str] = {
                run_id: job
                for run_id, job in conn.execute(
                    select(RUNS.c.id, RUNS.c.job_name).where(RUNS.c.id.in_(run_ids), *unsent)
                )
            }
            if found:
                conn.execute(delete(RUNS).where(RUNS.c.id.in_(list(found)), *unsent))
                conn.execute(
                    update(STATES)
                    .where(STATES.c.job_name.in_(set(found.values())), STATES.c.last_tick_at > now)
                    .values(last_tick_at=now, updated_at=now)
                )
        return set(found)

    def _advance_state(self, conn: Connection, newest: dict[str, datetime], now: datetime) -> None:
        name = conn.dialect.name
        params = [
            {"job_name": job, "last_tick_at": at, "updated_at": now} for job, at in newest.items()
        ]
        if name in ("postgresql", "sqlite"):
            stmt = (postgresql.insert if name == "postgresql" else sqlite.insert)(STATES)
            greatest = func.greatest if name == "postgresql" else func.max
            stmt = stmt.on_conflict_do_update(
                index_elements=["job_name"],
                set_={
                    "last_tick_at": greatest(STATES.c.last_tick_at, stmt.excluded.last_tick_at),
                    "updated_at": stmt.excluded.updated_at,
                },
            )
        else:
            my = mysql.insert(STATES)
            stmt = my.on_duplicate_key_update(  # type: ignore[assignment]
                last_tick_at=func.greatest(STATES.c.last_tick_at, my.inserted.last_tick_at),
                updated_at=my.inserted.updated_at,
            )
        conn.execute(stmt, params)

    def mark_enqueued(self, run_id: str, at: datetime) -> None:
        self.mark_enqueued_many([run_id], at)

    def mark_enqueued_many(self, run_ids: Sequence[str], at: datetime) -> None:
        """Record that these runs were published at `at` (runs already marked keep theirs)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(RUNS)
                .where(RUNS.c.id.in_(list(run_ids)), RUNS.c.enqueued_at.is_(None))
                .values(enqueued_at=at)
            )

    def last_ticks(self) -> dict[str, datetime]:
        """The latest claimed tick of every job, where catch-up after downtime starts."""
        with self.engine.connect() as conn:
            return {
                name: at
                for name, at in conn.execute(select(STATES.c.job_name, STATES.c.last_tick_at))
            }

    def active_jobs(self, job_names: Sequence[str]) -> set[str]:
        """Those of the jobs that have a run queued, running or waiting to retry."""
        found: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(job_names), 500):
                chunk = list(job_names[start : start + 500])
                found.update(
                    conn.execute(
                        select(RUNS.c.job_name)
                        .where(RUNS.c.job_name.in_(chunk), RUNS.c.status.in_(list(ACTIVE_STATUSES)))
                        .distinct()
                    ).scalars()
                )
        return found

    def record_published(self, run: NewRun, now: datetime) -> None:
        """Record a run published from Python (`.delay()`), unless it is already recorded."""
        self.claim(run, now)

    def record_started(
        self,
        run_id: str,
        *,
        job_name: str,
        task_name: str,
        worker: str | None,
        at: datetime,
        worker_process: str | None = None,
        redelivered: bool = False,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        queue: str | None = None,
        deadline_at: datetime | None = None,
        known: bool = True,
    ) -> bool:
        """Mark a run running (attempts + 1); False if this delivery must not run it.

        A run's message can arrive twice: a beat re-sends a claim it cannot prove was
        published, and a broker redelivers a message whose consumer died. The row decides:
        a finished run is not run again; a running one is taken over only by a redelivery
        (the broker saw the first delivery end unacknowledged: its worker died) or when the
        worker process holding it has stopped heartbeating. Any other copy is a duplicate.
        A run never published through us is created here, as trigger `api`; `known=False`
        says the message did not come through us, so its row is most likely new (one
        INSERT instead of UPDATE, SELECT, INSERT).
        """
        args, kwargs = redact(list(args)), redact(dict(kwargs or {}))
        plain = None
        if self._plain and self._held is not None:
            plain = pg_try_start(
                self._held,
                pg_start_params(
                    run_id,
                    job_name=job_name,
                    task_name=task_name,
                    at=at,
                    worker=worker,
                    worker_process=worker_process,
                    queue=queue,
                    args=args,
                    kwargs=kwargs,
                    deadline_at=deadline_at,
                ),
                known=known,
            )
            if plain:
                return True
        new_row = {
            "id": run_id,
            "job_name": job_name,
            "task_name": task_name,
            "trigger": Trigger.API,
            "status": RunStatus.RUNNING,
            "created_at": at,
            "enqueued_at": at,
            "started_at": at,
            "attempts": 1,
            "worker": worker,
            "worker_process": worker_process,
            "queue": queue,
            "args": args,
            "kwargs": kwargs,
            "deadline_at": deadline_at,
        }
        with self._held.begin() if self._held else self.engine.begin() as conn:
            # plain is False when the plain SQL has done these two and left it to the row.
            if plain is None:
                if not known and _insert_started(conn, new_row):
                    return True
                start = {
                    "run_id": run_id,
                    "started_at": at,
                    "worker": worker,
                    "worker_process": worker_process,
                    "deadline_at": deadline_at,
                }
                if conn.execute(_START, start).rowcount:
                    return True
            # Past here a run is rare (a duplicate or a takeover): SQL expressions are built
            # only now, as building them costs a worker more CPU than the common path's SQL.
            by_id = RUNS.c.id == run_id
            row = conn.execute(select(RUNS.c.status, RUNS.c.worker_process).where(by_id)).first()
            if row is None:
                _insert_started(conn, new_row)
                return True
            status, holder = RunStatus(row[0]), row[1]
            if status is not RunStatus.RUNNING:
                return False  # finished (or skipped/missed): a duplicate message
            if not redelivered and holder is not None and self._process_alive(conn, holder, at):
                return False  # being run right now by a live worker
            # Its worker is gone: take it over, unless another delivery just did.
            holder_is = (
                RUNS.c.worker_process.is_(None)
                if holder is None
                else RUNS.c.worker_process == holder
            )
            taken = conn.execute(
                update(RUNS)
                .where(by_id, RUNS.c.status == RunStatus.RUNNING, holder_is)
                .values(
                    status=RunStatus.RUNNING,
                    started_at=at,
                    worker=worker,
                    worker_process=worker_process,
                    attempts=RUNS.c.attempts + 1,
                    deadline_at=deadline_at,
                    enqueued_at=func.coalesce(RUNS.c.enqueued_at, at),
                    finished_at=None,
                )
            ).rowcount
            return bool(taken)

    def _process_alive(self, conn: Connection, process_id: str, now: datetime) -> bool:
        seen = conn.execute(
            select(HEARTBEATS.c.seen_at).where(HEARTBEATS.c.id == process_id)
        ).scalar()
        return seen is not None and seen >= now - PROCESS_ALIVE_WITHIN

    def reap(self, now: datetime, worker_timeout: timedelta) -> list[tuple[str, str]]:
        """Mark `lost` the runs left `running` by a worker that is gone or forgot them.

        Lost: the worker process stopped heartbeating; or it heartbeats but no longer lists
        the run among the tasks it is executing (a pool child died and the message was not
        redelivered); or the run is far past its time limit. Only runs started more than
        `worker_timeout` ago are looked at. Returns (run id, job name) of each.
        """
        since = now - worker_timeout
        with self.engine.begin() as conn:
            beats = {
                process: (seen, detail or "")
                for process, seen, detail in conn.execute(
                    select(HEARTBEATS.c.id, HEARTBEATS.c.seen_at, HEARTBEATS.c.detail).where(
                        HEARTBEATS.c.kind == "worker"
                    )
                )
            }
            candidates = conn.execute(
                select(RUNS.c.id, RUNS.c.job_name, RUNS.c.worker_process, RUNS.c.deadline_at).where(
                    RUNS.c.status == RunStatus.RUNNING, RUNS.c.started_at < since
                )
            ).all()
            lost = []
            for run_id, job_name, holder, deadline_at in candidates:
                seen, active = beats.get(holder or "", (None, ""))
                if deadline_at is not None and deadline_at < since:
                    why = "ran far past its time limit"
                elif holder is not None and (seen is None or seen < since):
                    why = f"its worker {holder} stopped"
                elif holder is not None and seen is not None and seen >= since:
                    if run_id in active.split(","):
                        continue
                    why = f"its worker {holder} is no longer running it"
                else:
                    continue
                conn.execute(
                    update(RUNS)
                    .where(RUNS.c.id == run_id, RUNS.c.status == RunStatus.RUNNING)
                    .values(
                        status=RunStatus.LOST,
                        finished_at=now,
                        error_type="WorkerLost",
                        error_message=f"{why}; a redelivery would run it again",
                    )
                )
                lost.append((run_id, job_name))
        return lost

    def reap_queued(self, now: datetime, queued_timeout: timedelta) -> list[tuple[str, str]]:
        """Mark `lost` the runs sent longer than `queued_timeout` ago that no worker started.

        Their message was lost (a broker restarted without persistence, a pool child took it
        down) or sits behind a very long backlog; in the second case the worker still runs it
        when it arrives (`lost` can be started), so the mark is never wrong for long. Left
        `queued`, such a run would block its job for ever under `overlap: forbid`.
        """
        cutoff = now - queued_timeout
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(RUNS.c.id, RUNS.c.job_name).where(
                    RUNS.c.status == RunStatus.QUEUED, RUNS.c.enqueued_at < cutoff
                )
            ).all()
            for run_id, _job in rows:
                conn.execute(
                    update(RUNS)
                    .where(RUNS.c.id == run_id, RUNS.c.status == RunStatus.QUEUED)
                    .values(
                        status=RunStatus.LOST,
                        finished_at=now,
                        error_type="NeverStarted",
                        error_message=f"sent but not started within {queued_timeout}: its "
                        "message was lost, or the queue is far behind",
                    )
                )
        return [(run_id, job) for run_id, job in rows]

    def unsent(self, due_before: datetime, limit: int = 500) -> list[Run]:
        """Claimed runs that no beat has recorded as published: candidates to send again.

        Those whose tick (or, without one, whose claim) is before `due_before`: a beat claims
        ticks ahead of their instant, and a claim not yet due is not late.
        """
        query = (
            select(Run)
            .where(
                Run.status == RunStatus.QUEUED,
                Run.enqueued_at.is_(None),
                or_(
                    Run.tick_at < due_before,
                    and_(Run.tick_at.is_(None), Run.created_at < due_before),
                ),
                Run.trigger.in_([Trigger.SCHEDULE, Trigger.CATCHUP, Trigger.MANUAL]),
            )
            .order_by(Run.created_at)
            .limit(limit)
        )
        with Session(self.engine) as session:
            return list(session.scalars(query))

    def sent_not_started(self, sent_before: datetime) -> list[Run]:
        """Runs published (by a beat or `trigger`) before `sent_before` that no worker started.

        What a broker that lost its data took with it: the beat sends them again.
        """
        query = (
            select(Run)
            .where(
                Run.status == RunStatus.QUEUED,
                Run.enqueued_at < sent_before,
                Run.trigger.in_([Trigger.SCHEDULE, Trigger.CATCHUP, Trigger.MANUAL]),
            )
            .order_by(Run.created_at)
        )
        with Session(self.engine) as session:
            return list(session.scalars(query))

    def record_finished(
        self,
        run_id: str,
        status: RunStatus,
        at: datetime,
        *,
        result: Any = None,
        error_type: str | None = None,
        error_message: str | None = None,
        traceback: str | None = None,
        started_at: datetime | None = None,
    ) -> None:
        """Record the outcome of a run; its duration is from started_at to `at`.

        Pass `started_at` when the caller knows it (the worker child that ran the task) to
        save a round trip; otherwise it is read from the row.
        """
        with self.engine.begin() as conn:
            if started_at is None:
                started_at = conn.execute(
                    select(RUNS.c.started_at).where(RUNS.c.id == run_id)
                ).scalar()
            conn.execute(
                _FINISH,
                _finish_params(
                    run_id,
                    status,
                    at,
                    result=result,
                    error_type=error_type,
                    error_message=error_message,
                    traceback=traceback,
                    started_at=started_at,
                ),
            )

    def record_finished_many(self, outcomes: Sequence[Mapping[str, Any]]) -> None:
        """`record_finished` of many runs (keyword arguments each), in one round trip."""
        if not outcomes:
            return
        if self._plain and self._held_outcomes is not None:
            rows = [pg_finish_row(**outcome) for outcome in outcomes]
            if self._held_outcomes.executemany(PG_FINISH, rows) is not None:
                return
        with self.engine.begin() as conn:
            conn.execute(_FINISH, [_finish_params(**outcome) for outcome in outcomes])

    # -- queries (queries.py, stats.py, rollup.py) -----------------------------------------

    def runs(self, flt: RunFilter) -> list[Run]:
        """Runs matching the filter, newest first."""
        return queries.runs(self.engine, flt)

    def get(self, run_id: str) -> Run | None:
        return queries.get(self.engine, run_id)

    def last_statuses(self, job_names: Sequence[str]) -> dict[str, RunStatus]:
        """The status of each job's newest run (jobs without runs are absent)."""
        return queries.last_statuses(self.engine, job_names)

    def stats(
        self, since: datetime | None, *, exact: bool = False, now: datetime | None = None
    ) -> list[JobStats]:
        """Per job: runs, successes, failures, p50/p95 duration, last run and status.

        Exact counts; p50/p95 within JobStats.percentile_error (0 with `exact`). See stats.py.
        """
        return job_stats(self.engine, since, now or utcnow(), exact)

    def refresh_stats(self, now: datetime) -> int:
        """Bring the stats rollup up to date (the beat calls it); returns snapshots taken."""
        return rollup.refresh(self.engine, now)

    def purge(self, before: datetime) -> int:
        """Delete finished runs created before `before`; returns how many."""
        with self.engine.begin() as conn:
            rollup.forget_before(conn, before)
            return conn.execute(
                delete(RUNS).where(
                    RUNS.c.created_at < before, RUNS.c.status.in_([s.value for s in FINAL_STATUSES])
                )
            ).rowcount

    # -- liveness -----------------------------------------------------------------------

    def heartbeat(
        self, process_id: str, kind: str, host: str, pid: int, now: datetime, detail: str = ""
    ) -> None:
        """Say that a beat or worker process is alive."""
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(HEARTBEATS)
                .where(HEARTBEATS.c.id == process_id)
                .values(seen_at=now, detail=detail)
            ).rowcount
            if not changed:
                conn.execute(
                    insert_ignore(conn, HEARTBEATS).values(
                        id=process_id,
                        kind=kind,
                        host=host,
                        pid=pid,
                        started_at=now,
                        seen_at=now,
                        detail=detail,
                    )
                )

    def alive(self, kind: str, now: datetime, within: timedelta) -> list[Heartbeat]:
        """Processes of a kind that said they were alive within `within` of `now`."""
        with Session(self.engine) as session:
            return list(
                session.scalars(
                    select(Heartbeat)
                    .where(Heartbeat.kind == kind, Heartbeat.seen_at >= now - within)
                    .order_by(Heartbeat.id)
                )
            )

    def forget_heartbeat(self, process_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(HEARTBEATS).where(HEARTBEATS.c.id == process_id))


__all__ = [
    "RESULT_LIMIT",
    "HistoryStore",
    "JobStats",
    "NewRun",
    "RunFilter",
    "cap_result",
    "redact",
    "run_id_for",
    "utcnow",
]
