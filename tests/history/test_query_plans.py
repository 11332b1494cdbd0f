"""The queries behind `history` and `stats`: same answers as the plain definition, and on a
big PostgreSQL table, plans that read indexes (bench/history_queries.py times them)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert, text

from scheduler.history.db import make_engine
from scheduler.history.models import RunStatus, Trigger
from scheduler.history.schema import upgrade
from scheduler.history.store import RUNS, HistoryStore, JobStats, RunFilter
from tests.services import database

NOW = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
FAILED = {RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.LOST}


def random_rows(rng: random.Random, count: int) -> list[dict[str, Any]]:
    rows = []
    for n in range(count):
        job = f"job-{min(rng.randrange(6), rng.randrange(6))}"  # skewed: job-0 is the busiest
        status = rng.choice(list(RunStatus))
        # Durations on a coarse grid, so that equal values and ties at p50/p95 occur.
        duration = rng.randrange(40) / 4 if rng.random() < 0.8 else None
        rows.append(
            {
                "id": f"run-{n}",
                "job_name": job,
                "task_name": "jobs.demo.noop",
                "trigger": Trigger.SCHEDULE,
                "status": status,
                # Unique instants: which of two equally new runs is "last" is not specified.
                "created_at": NOW - timedelta(days=10) + timedelta(seconds=n * 700 + rng.random()),
                "duration_s": duration,
                "attempts": 1,
            }
        )
    return rows


def expected_stats(rows: list[dict[str, Any]], since: datetime | None) -> list[JobStats]:
    """`stats` as defined: over the runs created since `since`, the newest run overall."""

    def percentile(values: list[float], q: float) -> float | None:
        return values[min(len(values) - 1, round(q * (len(values) - 1)))] if values else None

    window = [r for r in rows if since is None or r["created_at"] >= since]
    out = []
    for job in sorted({r["job_name"] for r in window}):
        mine = [r for r in window if r["job_name"] == job]
        durations = sorted(r["duration_s"] for r in mine if r["duration_s"] is not None)
        newest = max((r for r in rows if r["job_name"] == job), key=lambda r: r["created_at"])
        out.append(
            JobStats(
                job_name=job,
                runs=len(mine),
                succeeded=sum(r["status"] is RunStatus.SUCCEEDED for r in mine),
                failed=sum(r["status"] in FAILED for r in mine),
                p50_s=percentile(durations, 0.5),
                p95_s=percentile(durations, 0.95),
                last_run_at=newest["created_at"],
                last_status=newest["status"],
            )
        )
    return out


def test_stats_match_their_definition(store: HistoryStore) -> None:
    rows = random_rows(random.Random(5), 1200)
    with store.engine.begin() as conn:
        conn.execute(insert(RUNS), rows)
    for since in (None, NOW - timedelta(days=3), NOW - timedelta(hours=5), NOW):
        assert store.stats(since) == expected_stats(rows, since), since


# -- plans on a big table (PostgreSQL) ----------------------------------------------------

ROWS = 200_000
JOBS = 2000
# 60 days of runs in time order; job drawn with density ~ x^-2/3 (a few busy jobs, many rare).
FILL = """
INSERT INTO runs (id, job_name, task_name, trigger, status, created_at, duration_s, attempts)
SELECT md5(g::text), 'job-' || lpad(floor(:jobs * power(random(), 3))::int::text, 4, '0'),
    'jobs.demo.noop', 'schedule',
    CASE WHEN random() < 0.015 THEN 'failed' ELSE 'succeeded' END,
    :start + g * :step * interval '1 second', random() * 10, 1
FROM generate_series(1, :rows) AS g
"""


@pytest.fixture(scope="module")
def big_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A PostgreSQL history with ROWS runs, vacuumed and analyzed as autovacuum would."""
    with database("postgresql", Path(tmp_path_factory.mktemp("plans"))) as url:
        engine = make_engine(url)
        upgrade(engine)
        with engine.begin() as conn:
            conn.execute(
                text(FILL),
                {
                    "jobs": JOBS,
                    "rows": ROWS,
                    "start": NOW - timedelta(days=60),
                    "step": 60 * 86400 / ROWS,
                },
            )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE runs"))
        yield engine
        engine.dispose()


def plans_of(engine: Engine, call: Any) -> list[str]:
    """The EXPLAIN of every statement `call` sends to the engine."""
    sent: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        sent.append((statement, params))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    with engine.connect() as conn:
        return [
            "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, params))
            for statement, params in sent
        ]


@pytest.mark.slow  # big_postgres: filling and analysing ROWS runs
@pytest.mark.parametrize(
    "query",
    [
        lambda s: s.runs(RunFilter(job_name="job-0000")),
        lambda s: s.runs(RunFilter(job_name="job-1999")),
        lambda s: s.runs(RunFilter(status=RunStatus.FAILED, since=NOW - timedelta(days=1))),
        lambda s: s.stats(NOW - timedelta(days=7)),
    ],
    ids=["history-busy-job", "history-rare-job", "history-failed-1d", "stats-7d"],
)
def test_history_queries_read_indexes_not_the_table(big_postgres: Engine, query: Any) -> None:
    plans = plans_of(big_postgres, lambda: query(HistoryStore(big_postgres)))
    assert plans
    for plan in plans:
        assert "Seq Scan" not in plan and "Index" in plan, plan


@pytest.mark.slow
def test_stats_reads_its_window_from_the_index_alone(big_postgres: Engine) -> None:
    store = HistoryStore(big_postgres)
    (plan,) = plans_of(big_postgres, lambda: store.stats(NOW - timedelta(days=7)))
    assert "Index Only Scan using ix_runs_created_stats" in plan, plan
    # The last status of each job: one probe of the (job_name, created_at, id) index.
    assert "Index Scan Backward using ix_runs_job_created_id" in plan, plan
