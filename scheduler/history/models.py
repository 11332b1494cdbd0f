"""The run-history schema: one `runs` row per run (SPEC §6), plus beat bookkeeping."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Enum,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from scheduler.history.statuses import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    RunStatus,
    Trigger,
    utcnow,
)

__all__ = [
    "ACTIVE_STATUSES",
    "FINAL_STATUSES",
    "Base",
    "Heartbeat",
    "JobState",
    "Run",
    "RunStatus",
    "StatsLock",
    "StatsPending",
    "StatsSnapshot",
    "StatsTotal",
    "Trigger",
    "utcnow",
]


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every dialect; naive ones are refused.

    SQLite and MySQL keep no offset, so values are stored as naive UTC there and made aware
    again on the way out; MySQL also needs fsp=6 or it drops the microseconds.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} refused: history times are aware UTC")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _enum(cls: type[StrEnum], name: str) -> Enum:
    # Store the lowercase values ("failed"), not the member names, and as VARCHAR + CHECK-free
    # strings so that adding a status later needs no ALTER TYPE on PostgreSQL.
    return Enum(
        cls, name=name, values_callable=lambda e: [m.value for m in e], native_enum=False, length=20
    )


STATUS = _enum(RunStatus, "run_status")
TRIGGER = _enum(Trigger, "run_trigger")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(155), primary_key=True)  # the Celery task id
    job_name: Mapped[str] = mapped_column(String(200))
    task_name: Mapped[str] = mapped_column(String(255))
    trigger: Mapped[Trigger] = mapped_column(TRIGGER)
    status: Mapped[RunStatus] = mapped_column(STATUS)
    tick_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_s: Mapped[float | None] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(255))
    # The worker process (its heartbeat id) that runs it: tells a redelivery after a crash
    # (that process is gone) from a duplicate message (that process is alive and busy).
    worker_process: Mapped[str | None] = mapped_column(String(255))
    queue: Mapped[str | None] = mapped_column(String(200))
    args: Mapped[Any] = mapped_column(JSON, nullable=True)
    kwargs: Mapped[Any] = mapped_column(JSON, nullable=True)
    result: Mapped[Any] = mapped_column(JSON, nullable=True)
    error_type: Mapped[str | None] = mapped_column(String(255))
    error_message: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        # `history` lists newest first (created_at, then id), by job, by status, or all.
        # With id in the key, `history --job X` reads its page straight off the index, in
        # order, for a busy job as for a rare one.
        Index("ix_runs_job_created_id", "job_name", "created_at", "id"),
        # `stats` reads every run of its window: with all the columns it needs in the key,
        # PostgreSQL answers from the index alone (no heap visit per run). It also serves
        # `history` with no filter, and `purge`.
        Index("ix_runs_created_stats", "created_at", "job_name", "status", "duration_s"),
        Index("ix_runs_status_created", "status", "created_at"),
        Index("ix_runs_trigger_created", "trigger", "created_at"),
        # The beat asks "does this job have a run queued or running?" before each tick.
        Index("ix_runs_job_status", "job_name", "status"),
    )


class JobState(Base):
    """Per job, the latest tick a beat has claimed: where catch-up starts after downtime."""

    __tablename__ = "job_state"

    job_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_tick_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Heartbeat(Base):
    """A beat or worker process that said it was alive; `status` shows the recent ones."""

    __tablename__ = "heartbeats"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # "beat@host:pid"
    kind: Mapped[str] = mapped_column(String(20))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    detail: Mapped[str | None] = mapped_column(Text)


# `stats` over a big history: every job's totals summed up to a few instants (rollup.py).


class StatsSnapshot(Base):
    """An instant up to which every job's settled runs are summed up in `stats_totals`."""

    __tablename__ = "stats_snapshots"

    at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    built_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StatsTotal(Base):
    """A job's totals at a snapshot: sums over its settled runs created before `at`.

    Counted from an arbitrary origin (an earlier snapshot may hold negative sums): only the
    difference between two snapshots means something, the runs created between them. A job
    without a row has zero there.
    """

    __tablename__ = "stats_totals"

    at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    job_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    runs: Mapped[int] = mapped_column(BigInteger)
    succeeded: Mapped[int] = mapped_column(BigInteger)
    failed: Mapped[int] = mapped_column(BigInteger)
    timed: Mapped[int] = mapped_column(BigInteger)  # runs with a duration
    low: Mapped[int] = mapped_column(Integer)  # the bucket of the first packed count
    durations: Mapped[bytes] = mapped_column(LargeBinary)  # durations.py: packed histogram
    # The job's newest run created before `at`, as it was then (NULL where not known: a
    # snapshot taken backwards from a later one): `stats` shows it as the last run of a job
    # with no run since, without a probe of `runs` (one per job, the costliest part).
    newest_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    newest_id: Mapped[str | None] = mapped_column(String(155))
    newest_status: Mapped[RunStatus | None] = mapped_column(STATUS)


class StatsPending(Base):
    """A run left out of the totals: not settled when its time was summed up, so `stats`
    reads it from `runs`, as it is now, every time."""

    __tablename__ = "stats_pending"

    run_id: Mapped[str] = mapped_column(String(155), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    job_name: Mapped[str] = mapped_column(String(200))
    # No other run of the job was created at the same instant: (created_at, job_name) finds
    # it in the index on created_at, which holds its status and duration (no table read).
    keyed: Mapped[bool] = mapped_column(Boolean)


class StatsLock(Base):
    """One row, updated first by whatever changes the totals, so that they take turns."""

    __tablename__ = "stats_lock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    changes: Mapped[int] = mapped_column(BigInteger)
