"""Time of the run-history queries behind `scheduler history` and `scheduler stats` on a big
`runs` table in PostgreSQL, with the EXPLAIN (ANALYZE, BUFFERS) of every statement they issue.

    python bench/history_queries.py [--quick] [--rows N [N ...]] [--repeat 7] [--jobs 2000]
        [--no-cli] [--no-explain] [--keep]

Needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth; SCHEDULER_TEST_POSTGRES_URL
changes it). Default sizes 1,000,000 and 10,000,000 rows (loading 10 M takes a few minutes);
--quick: 100,000 and 1,000,000.

Per size: a fresh database migrated with `python -m scheduler db upgrade`, then `runs` is
filled by server-side SQL (INSERT ... SELECT FROM generate_series): --jobs jobs of skewed
frequency (job-0000 has ~8 % of the rows, the rarest ~0.02 %), 60 days of history ending now,
in time order as a live system appends them, ~1.5 % failed and a few % timed_out, lost,
revoked, skipped and missed, with tick/enqueued/started/finished times and durations that
agree. The indexes are dropped during the load and rebuilt from their own definitions after
it (a bulk load is faster that way; the schema ends up as migrated), then VACUUM ANALYZE (a
live table gets that from autovacuum).

--keep: the database of each size is named bench_history_<rows>_<jobs> and kept after the
run; the next run with --keep reuses it: `db upgrade` (its time is shown: migrations on a big
table), then only the runs due since its last use are added (the same generator, continued:
the table grows by ~1.9 rows/s per 10 M as a live one does, and still ends now), the runs the
fill left queued/running/retrying over ten minutes ago end `lost` (the reaper's part), and
VACUUM ANALYZE. The stats rollup is kept too, as a live system keeps it. Loading 10 M rows
takes minutes on two cores; drop them with
`dropdb -h 127.0.0.1 -U postgres bench_history_10000000_2000` when done.

Timed: HistoryStore.runs and HistoryStore.stats, the code `scheduler history` and `scheduler
stats` call, with the arguments those commands build for
  history --job job-0000 --limit 50     (the busiest job)
  history --job job-1999 --limit 50     (one of the rarest)
  history --status failed --since 1d
  stats --since 7d                      (from the rollup; p50/p95 within 2.2 %)
  stats --since 7d --exact              (every run of the window)
one warm-up call (its time is "first ms": `stats` takes the snapshots of the rollup it lacks
then, as the beat otherwise does), then --repeat calls: median and max wall-clock ms; the
size of the rollup after them. The SQL each call sends
is captured from the engine, and each distinct statement is shown with EXPLAIN (ANALYZE,
BUFFERS); the table says whether any plan has a Seq Scan. Also the `scheduler history` and
`scheduler stats` commands once each, end to end (a new Python process: start-up included).

Stock Celery beat and RedBeat keep no run history, so there is no peer to compare with here.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sqlalchemy import Engine, create_engine, event, text  # noqa: E402

from bench._support import (  # noqa: E402
    base_env,
    exit_on_sigterm,
    header,
    load_line,
    migrate,
    postgres_database,
)
from scheduler.history.db import make_engine  # noqa: E402
from scheduler.history.statuses import RunStatus  # noqa: E402
from scheduler.history.store import HistoryStore, RunFilter  # noqa: E402

DAYS = 60
CHUNK = 1_000_000  # rows per INSERT statement, to show progress on big loads

# One row per generate_series value; rows are spread evenly over the window in series order
# (the physical order of a table that a live system appends to), each job drawn with density
# ~ x^-2/3 so that a few jobs have most of the runs, as with heartbeat-like schedules.
FILL = """
INSERT INTO runs (id, job_name, task_name, trigger, status, tick_at, created_at, enqueued_at,
    started_at, finished_at, duration_s, attempts, worker, worker_process, queue, args, kwargs,
    result, error_type, error_message, deadline_at)
SELECT
    md5('bench-' || g)::uuid::text,
    'job-' || lpad(j::text, 4, '0'),
    'jobs.bench.task_' || (j % 40),
    trig,
    st,
    CASE WHEN trig IN ('schedule', 'catchup') THEN created - interval '3 ms' END,
    created,
    CASE WHEN st NOT IN ('missed', 'skipped') THEN created + interval '2 ms' END,
    started,
    CASE WHEN st IN ('missed', 'skipped') THEN created
         WHEN st IN ('queued', 'running', 'retrying') THEN NULL
         ELSE started + dur * interval '1 second' END,
    CASE WHEN started IS NOT NULL AND st NOT IN ('running', 'retrying') THEN dur END,
    CASE WHEN started IS NULL THEN 0 WHEN st = 'lost' THEN 2 ELSE 1 END,
    CASE WHEN started IS NOT NULL THEN 'worker-' || (g % 8) || '@bench' END,
    CASE WHEN started IS NOT NULL THEN 'worker-' || (g % 8) || '@bench:' || (100 + g % 3) END,
    CASE WHEN j % 10 = 0 THEN 'reports' ELSE 'default' END,
    '[]'::json,
    '{}'::json,
    CASE WHEN st = 'succeeded' THEN '{"ok": true}'::json END,
    CASE st WHEN 'failed' THEN 'ValueError' WHEN 'timed_out' THEN 'TimeLimitExceeded'
            WHEN 'lost' THEN 'WorkerLost' END,
    CASE st WHEN 'failed' THEN 'bad input for job ' || j
            WHEN 'timed_out' THEN 'TimeLimitExceeded(600)'
            WHEN 'lost' THEN 'its worker stopped' END,
    CASE WHEN started IS NOT NULL THEN started + interval '10 minutes' END
FROM (
    SELECT *,
        CASE WHEN st IN ('missed', 'skipped', 'queued') THEN NULL
             ELSE created + interval '12 ms' + (wait * interval '1 second') END AS started,
        CASE WHEN st = 'timed_out' THEN 600.0
             ELSE round(((0.05 + (j % 97) * 0.2) * (0.3 + 1.4 * rd))::numeric, 6)::float8
        END AS dur
    FROM (
        SELECT g, j, created, rd, wait,
            CASE WHEN rt < 0.96 THEN 'schedule' WHEN rt < 0.98 THEN 'catchup'
                 WHEN rt < 0.995 THEN 'manual' ELSE 'api' END AS trig,
            CASE WHEN created > :now - interval '2 minutes'
                      THEN (ARRAY['queued', 'running', 'retrying'])[1 + g % 3]
                 WHEN rs < 0.015 THEN 'failed' WHEN rs < 0.017 THEN 'timed_out'
                 WHEN rs < 0.018 THEN 'lost' WHEN rs < 0.019 THEN 'revoked'
                 WHEN rs < 0.027 THEN 'skipped' WHEN rs < 0.030 THEN 'missed'
                 ELSE 'succeeded' END AS st
        FROM (
            SELECT g,
                floor(:jobs * power(random(), 3))::int AS j,
                :start + (g - 1 + random()) * :step * interval '1 second' AS created,
                random() AS rs, random() AS rt, random() AS rd,
                random() * random() * 2 AS wait
            FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS g
        ) AS a
    ) AS b
) AS c
"""


@dataclass
class Timing:
    rows: int
    label: str
    ms: list[float]
    result: str
    first_ms: float | None = None  # the warm-up call (stats: takes the snapshots it lacks)
    statements: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)
    plans: dict[str, str] = field(default_factory=dict)

    @property
    def seq_scan(self) -> bool:
        return any("Seq Scan" in plan for plan in self.plans.values())


def load(engine: Engine, rows: int, jobs: int, now: datetime) -> float:
    """Fill `runs` with `rows` rows; returns the seconds it took (indexes rebuilt included)."""
    started = time.monotonic()
    start = now - timedelta(days=DAYS)
    step = DAYS * 86400 / rows
    with engine.connect() as conn:
        conn.execute(text("SET synchronous_commit = off"))
        conn.execute(text("SET maintenance_work_mem = '1GB'"))
        indexes = conn.execute(
            text(
                "SELECT indexname, indexdef FROM pg_indexes "
                "WHERE tablename = 'runs' AND indexname <> 'pk_runs'"
            )
        ).all()
        for name, _ in indexes:
            conn.execute(text(f"DROP INDEX {name}"))
        conn.execute(text("ALTER TABLE runs DROP CONSTRAINT pk_runs"))
        conn.commit()
        for lo in range(1, rows + 1, CHUNK):
            hi = min(rows, lo + CHUNK - 1)
            conn.execute(
                text(FILL),
                {"lo": lo, "hi": hi, "jobs": jobs, "start": start, "step": step, "now": now},
            )
            conn.commit()
            print(f"  loaded {hi:,} rows ({time.monotonic() - started:.0f}s)", file=sys.stderr)
        conn.execute(text("ALTER TABLE runs ADD CONSTRAINT pk_runs PRIMARY KEY (id)"))
        for _, definition in indexes:
            conn.execute(text(definition))
        conn.execute(text(META))
        conn.execute(
            text("INSERT INTO bench_meta VALUES (:start, :step, :rows, :jobs)"),
            {"start": start, "step": step, "rows": rows, "jobs": jobs},
        )
        conn.commit()
    vacuum(engine)
    return time.monotonic() - started


# What a kept database was filled with: `top_up` continues the same series.
META = "CREATE TABLE bench_meta (start timestamptz, step float8, loaded bigint, jobs int)"


def top_up(engine: Engine, now: datetime) -> int:
    """Add the runs the generator would have made since the last load; returns how many."""
    with engine.connect() as conn:
        conn.execute(text("SET synchronous_commit = off"))
        start, step, loaded, jobs = conn.execute(text("SELECT * FROM bench_meta")).one()
        due = int((now - start).total_seconds() / step)
        # The reaper's part: runs a worker never took, or stopped running, end `lost`
        # (the fill leaves its last two minutes queued, running or retrying).
        conn.execute(
            text(
                "UPDATE runs SET status = 'lost', finished_at = :now, error_type = 'WorkerLost' "
                "WHERE status IN ('queued', 'running', 'retrying') AND created_at < :cut"
            ),
            {"now": now, "cut": now - timedelta(minutes=10)},
        )
        if due > loaded:
            conn.execute(
                text(FILL),
                {
                    "lo": loaded + 1,
                    "hi": due,
                    "jobs": jobs,
                    "start": start,
                    "step": step,
                    "now": now,
                },
            )
            conn.execute(text("UPDATE bench_meta SET loaded = :due"), {"due": due})
            conn.commit()
    vacuum(engine)
    return max(0, due - loaded)


def rollup_line(engine: Engine) -> str:
    """The size of the stats rollup (rollup.py) after the queries."""
    with engine.connect() as conn:
        snapshots, totals, pending, size = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM stats_snapshots), (SELECT count(*) FROM "
                "stats_totals), (SELECT count(*) FROM stats_pending), pg_size_pretty("
                "pg_total_relation_size('stats_totals') + pg_total_relation_size('stats_pending'))"
            )
        ).one()
    return (
        f"stats rollup: {snapshots} snapshots, {totals:,} totals rows, {pending:,} pending "
        f"runs, {size} with indexes"
    )


def vacuum(engine: Engine) -> None:
    # VACUUM sets the visibility map (index-only scans need it), ANALYZE the statistics.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE runs"))


@contextmanager
def kept_database(rows: int, jobs: int) -> Iterator[tuple[str, bool]]:
    """(URL, True if it already holds a load) of the kept database of this size."""
    from tests.services import POSTGRES_ADMIN

    name = f"bench_history_{rows}_{jobs}"
    url = POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).scalar()
        loaded = False
        if exists:
            engine = create_engine(url)
            with engine.connect() as conn:
                loaded = bool(
                    conn.execute(text("SELECT to_regclass('bench_meta') IS NOT NULL")).scalar()
                )
            engine.dispose()
        if not loaded:  # new, or a load that was interrupted (its indexes may be gone)
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                conn.execute(text(f"CREATE DATABASE {name}"))
    finally:
        admin.dispose()
    yield url, loaded


class Capture:
    """The statements (and parameters) an engine sends while `on` is set."""

    def __init__(self, engine: Engine) -> None:
        self.on = False
        self.sent: list[tuple[str, Any]] = []
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if self.on:
            self.sent.append((statement, params))


def time_call(
    capture: Capture, call: Callable[[], list[Any]], repeat: int, budget_s: float
) -> tuple[float, list[float], list[Any], list[tuple[str, Any]]]:
    """One warm-up call (its ms returned first), then up to `repeat` timed ones (fewer once
    `budget_s` is spent)."""
    t0 = time.perf_counter()
    call()
    first = (time.perf_counter() - t0) * 1000
    capture.sent = []
    capture.on = True
    out = call()
    capture.on = False
    sent = capture.sent
    times: list[float] = []
    spent = time.monotonic()
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = call()
        times.append((time.perf_counter() - t0) * 1000)
        if time.monotonic() - spent > budget_s:
            break
    return first, times, out, sent


def explain(engine: Engine, sent: list[tuple[str, Any]]) -> dict[str, str]:
    """EXPLAIN (ANALYZE, BUFFERS) of each distinct statement, with its first parameters."""
    plans: dict[str, str] = {}
    with engine.connect() as conn:
        for statement, params in sent:
            if statement in plans:
                continue
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params).all()
            plans[statement] = "\n".join(row[0] for row in rows)
        conn.rollback()
    return plans


@contextmanager
def fresh_database(workdir: Path) -> Iterator[tuple[str, bool]]:
    with postgres_database(workdir) as url:
        yield url, False


def run_cli(env: dict[str, str], args: list[str], cwd: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "scheduler", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    ms = (time.perf_counter() - t0) * 1000
    if done.returncode != 0:
        return ms, f"exit {done.returncode}: {(done.stderr or done.stdout).strip()[:200]}"
    return ms, f"{len(done.stdout.splitlines())} lines of output"


def measure(rows: int, args: argparse.Namespace, tmp: Path) -> list[Timing]:
    timings: list[Timing] = []
    workdir = tmp / f"rows-{rows}"
    workdir.mkdir()
    (workdir / "schedules.yaml").write_text("jobs: {}\n")
    with kept_database(rows, args.jobs) if args.keep else fresh_database(workdir) as (url, loaded):
        env = base_env(SCHEDULER_DATABASE_URL=url)
        t0 = time.monotonic()
        migrate(env, workdir)
        migrated = time.monotonic() - t0
        engine = make_engine(url)
        now = datetime.now(UTC)
        if loaded:
            t0 = time.monotonic()
            added = top_up(engine, now)
            what = f"kept database: {added:,} runs added in {time.monotonic() - t0:.0f}s"
        else:
            what = f"{rows:,} rows loaded in {load(engine, rows, args.jobs, now):.0f}s"
        with engine.connect() as conn:
            size, count = conn.execute(
                text("SELECT pg_size_pretty(pg_total_relation_size('runs')), count(*) FROM runs")
            ).one()
        print(
            f"  {what}, runs has {count:,} rows, {size} with indexes; "
            f"db upgrade took {migrated:.1f}s",
            flush=True,
        )
        store = HistoryStore(engine)
        capture = Capture(engine)
        busiest, rarest = "job-0000", f"job-{args.jobs - 1:04d}"
        cases: list[tuple[str, Callable[[], list[Any]]]] = [
            (
                f"history --job {busiest} --limit 50",
                lambda: store.runs(RunFilter(job_name=busiest, limit=50)),
            ),
            (
                f"history --job {rarest} --limit 50",
                lambda: store.runs(RunFilter(job_name=rarest, limit=50)),
            ),
            (
                "history --status failed --since 1d",
                lambda: store.runs(
                    RunFilter(status=RunStatus.FAILED, since=datetime.now(UTC) - timedelta(days=1))
                ),
            ),
            ("stats --since 7d", lambda: store.stats(datetime.now(UTC) - timedelta(days=7))),
            (
                "stats --since 7d --exact",
                lambda: store.stats(datetime.now(UTC) - timedelta(days=7), exact=True),
            ),
        ]
        for label, call in cases:
            first, ms, out, sent = time_call(capture, call, args.repeat, budget_s=60)
            timing = Timing(rows, label, ms, f"{len(out)} rows", first_ms=first)
            timing.statements = [statement for statement, _ in sent]
            timing.params = [params for _, params in sent]
            if not args.no_explain:
                timing.plans = explain(engine, sent)
            timings.append(timing)
            print(f"  {label}: median {statistics.median(ms):.1f} ms", file=sys.stderr)
        print(f"  {rollup_line(engine)}", flush=True)
        if not args.no_cli:
            for cli_args in (
                ["history", "--job", busiest, "--limit", "50"],
                ["history", "--status", "failed", "--since", "1d"],
                ["stats", "--since", "7d"],
            ):
                ms_one, result = run_cli(env, cli_args, workdir)
                timings.append(
                    Timing(rows, "CLI: scheduler " + " ".join(cli_args), [ms_one], result)
                )
        engine.dispose()
    return timings


def table(timings: list[Timing]) -> str:
    head = (
        "rows",
        "query",
        "median ms",
        "max ms",
        "first ms",
        "calls",
        "statements",
        "seq scan",
        "result",
    )
    body = [
        (
            f"{t.rows:,}",
            t.label,
            f"{statistics.median(t.ms):.1f}",
            f"{max(t.ms):.1f}",
            f"{t.first_ms:.0f}" if t.first_ms is not None else "-",
            str(len(t.ms)),
            str(len(t.statements)) if t.statements else "-",
            ("yes" if t.seq_scan else "no") if t.plans else "-",
            t.result,
        )
        for t in timings
    ]
    widths = [max(len(row[i]) for row in (head, *body)) for i in range(len(head))]
    lines = []
    for n, row in enumerate((head, *body)):
        lines.append(
            "  ".join(
                cell.ljust(w) if i in (1, len(row) - 1) else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def plans_text(timings: list[Timing]) -> str:
    out = []
    for t in timings:
        for statement, plan in t.plans.items():
            sent = sum(1 for s in t.statements if s == statement)
            first = t.params[t.statements.index(statement)]
            out.append(
                f"--- {t.rows:,} rows, {t.label}: statement sent {sent} time(s) per call\n"
                f"{_one_line(statement)}\n  parameters (first call): {first}\n{plan}\n"
            )
    return "\n".join(out)


def _one_line(statement: str) -> str:
    return re.sub(r"\s+", " ", statement).strip()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100,000 and 1,000,000 rows")
    parser.add_argument("--rows", type=int, nargs="+", help="table sizes (default 1 M and 10 M)")
    parser.add_argument("--repeat", type=int, default=7, help="timed calls per query")
    parser.add_argument("--jobs", type=int, default=2000, help="distinct job names")
    parser.add_argument("--no-cli", action="store_true", help="skip the end-to-end commands")
    parser.add_argument("--no-explain", action="store_true", help="skip EXPLAIN ANALYZE")
    parser.add_argument(
        "--keep", action="store_true", help="keep the loaded databases and reuse them next time"
    )
    args = parser.parse_args()
    sizes = args.rows or ([100_000, 1_000_000] if args.quick else [1_000_000, 10_000_000])
    exit_on_sigterm()

    print(header("history queries: HistoryStore.runs/stats on PostgreSQL"))
    print(
        f"{args.jobs} jobs, {DAYS} days of runs ending now, {args.repeat} timed calls per "
        "query after one warm-up; no peer (stock beat and RedBeat keep no run history)",
        flush=True,
    )
    timings: list[Timing] = []
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-history-")))
        for rows in sizes:
            timings.extend(measure(rows, args, tmp))
    print()
    print(table(timings))
    if not args.no_explain:
        print()
        print(plans_text(timings))
    print(f"{load_line()} at the end")


if __name__ == "__main__":
    main()
