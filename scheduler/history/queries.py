"""Reads of the run history behind `scheduler history` and `jobs`: runs by filter, one run,
each job's last status. (`stats` is in stats.py.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Engine, Table, select
from sqlalchemy.orm import Session

from scheduler.history.models import Run, RunStatus, Trigger

RUNS = cast(Table, Run.__table__)


@dataclass(frozen=True, slots=True)
class RunFilter:
    job_name: str | None = None
    status: RunStatus | None = None
    trigger: Trigger | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50


def runs(engine: Engine, flt: RunFilter) -> list[Run]:
    """Runs matching the filter, newest first."""
    query = select(Run).order_by(Run.created_at.desc(), Run.id.desc()).limit(flt.limit)
    if flt.job_name:
        query = query.where(Run.job_name == flt.job_name)
    if flt.status:
        query = query.where(Run.status == flt.status)
    if flt.trigger:
        query = query.where(Run.trigger == flt.trigger)
    if flt.since:
        query = query.where(Run.created_at >= flt.since)
    if flt.until:
        query = query.where(Run.created_at < flt.until)
    with Session(engine) as session:
        return list(session.scalars(query))


def get(engine: Engine, run_id: str) -> Run | None:
    """The run with this id, if there is one."""
    with Session(engine) as session:
        return session.get(Run, run_id)


def last_statuses(engine: Engine, job_names: Sequence[str]) -> dict[str, RunStatus]:
    """The status of each job's newest run (jobs without runs are absent)."""
    found: dict[str, RunStatus] = {}
    with engine.connect() as conn:
        for name in job_names:
            status = conn.execute(
                select(RUNS.c.status)
                .where(RUNS.c.job_name == name)
                .order_by(RUNS.c.created_at.desc())
                .limit(1)
            ).scalar()
            if status is not None:
                found[name] = RunStatus(status)
    return found
