"""The queries behind `history` and `stats`: same answers as the plain definition, and on a
big PostgreSQL table, plans that read indexes (bench/history_queries.py times them)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert, text

from scheduler.history.db import make_engine
from scheduler.history.models import RunStatus
from scheduler.history.schema import upgrade
from scheduler.history.store import RUNS, HistoryStore, RunFilter
from tests.history.runs_data import NOW, expected_stats, random_rows
from tests.services import database


def test_stats_match_their_definition(store: HistoryStore) -> None:
    rows = random_rows(random.Random(5), 1200)
    with store.engine.begin() as conn:
        conn.execute(insert(RUNS), rows)
    for since in (None, NOW - timedelta(days=3), NOW - timedelta(hours=5), NOW):
        assert store.stats(since, exact=True) == expected_stats(rows, since), since


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


LIVE = NOW + timedelta(minutes=40)  # `now` for stats: the history ends just before


@pytest.mark.slow  # big_postgres: filling and analysing ROWS runs
@pytest.mark.parametrize(
    "query",
    [
        lambda s: s.runs(RunFilter(job_name="job-0000")),
        lambda s: s.runs(RunFilter(job_name="job-1999")),
        lambda s: s.runs(RunFilter(status=RunStatus.FAILED, since=NOW - timedelta(days=1))),
        lambda s: s.stats(NOW - timedelta(days=7), now=LIVE),
        lambda s: s.stats(NOW - timedelta(days=7), exact=True),
    ],
    ids=["history-busy-job", "history-rare-job", "history-failed-1d", "stats-7d", "exact-7d"],
)
def test_history_queries_read_indexes_not_the_table(big_postgres: Engine, query: Any) -> None:
    store = HistoryStore(big_postgres)
    query(store)  # stats: takes its snapshots the first time
    plans = plans_of(big_postgres, lambda: query(store))
    assert plans
    for plan in plans:
        assert "Seq Scan" not in plan and "Index" in plan, plan


@pytest.mark.slow
def test_exact_stats_read_the_window_from_the_index_alone(big_postgres: Engine) -> None:
    store = HistoryStore(big_postgres)
    (plan,) = plans_of(big_postgres, lambda: store.stats(NOW - timedelta(days=7), exact=True))
    assert "Index Only Scan using ix_runs_created_stats" in plan, plan
    # The last status of each job: one probe of the (job_name, created_at, id) index.
    assert "Index Scan Backward using ix_runs_job_created_id" in plan, plan


@pytest.mark.slow
def test_stats_read_two_snapshots_and_the_runs_near_the_ends_of_the_window(
    big_postgres: Engine,
) -> None:
    store = HistoryStore(big_postgres)
    store.stats(NOW - timedelta(days=7), now=LIVE)
    plans = "\n".join(
        plans_of(big_postgres, lambda: store.stats(NOW - timedelta(days=7), now=LIVE))
    )
    assert "on pk_stats_totals" in plans or "using pk_stats_totals" in plans, plans
    # `runs` is read by index only: near the ends of the window, pending runs by key, and
    # the newest run of a job that has none since the latest snapshot.
    for line in plans.splitlines():
        if " on runs" in line:
            assert "Index" in line and "Seq Scan" not in line, line
