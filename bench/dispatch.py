"""Beat dispatch lateness: N jobs due at the same instant; ours, stock Celery beat and RedBeat.

    python bench/dispatch.py [--quick] [--jobs 1000 10000 50000]
        [--schedulers ours stock redbeat] [--window 55] [--loglevel info]

Needs Redis at 127.0.0.1:6379 and PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth),
like the tests (SCHEDULER_TEST_REDIS_URL, SCHEDULER_TEST_POSTGRES_URL change them), and
celery-redbeat for the third run (`pip install -e ".[test,bench]"`; without it that run is
reported as skipped).

For each N, three runs, one after the other, each against a flushed private Redis DB with
no worker consuming:

  ours     `celery -A scheduler beat`, a fresh migrated PostgreSQL history database and a
           schedule file of N jobs `jobs.demo.noop`, `every: 60s` (anchored at the epoch, so
           all due at every minute boundary), `overlap: allow`;
  stock    `celery -A bench.stock_app beat -s <tmp>/celerybeat-schedule`: Celery's
           PersistentScheduler with N `crontab()` (every minute) entries of the same task;
  redbeat  `celery -A bench.redbeat_app beat`: celery-redbeat's RedBeatScheduler with the
           same N entries, its schedule and lock in the same Redis DB under the prefix
           `bench-redbeat:` (the flush before each run makes it start from a clean state).

A reader thread BRPOPs the `celery` list of that Redis DB and timestamps every message as it
arrives; lateness is arrival minus the minute boundary. The beat is started 20 s (1.5 ms
more per job, 58 s at most: time to load and, for ours, to prepare a burst) before a
boundary (the script waits up to a minute for that), and the first boundary after the beat
is ready is measured (`ready`: our beat has written its heartbeat, stock beat and RedBeat have fired
`beat_init`); collection stops when N messages for it have
arrived or --window seconds after it. Printed per scheduler: start-up time, messages
received in the window, lateness of the first message, p50/p99/max, when the last of the N
was sent (or "not in 55s": the beat had sent only the `received` count by the end of the
window), and the beat's resident memory when collection stopped (RSS) and at its peak. For
ours, the history's view of the same tick (enqueued_at - tick_at of its run rows) is
printed too.

Wall time: each run waits for its own minute boundary, so it takes about a minute plus its
send time whatever N is. The default (N = 1000 and 10000, three schedulers) takes about
7-8 minutes on a 2-CPU machine, --quick (N = 1000) about 3-4, and --jobs 1000 10000 50000
(the full table) about 12. Stock beat re-compares its whole schedule before every single
send (Scheduler.tick -> schedules_equal), so its send time grows with N^2: at N = 10000 it
sends only about a thousand messages within the window and is reported incomplete.

Schedule-file limits: a file over 1 MiB (about 20,000 of these jobs) is read by our beat
only with SCHEDULER_MAX_SCHEDULE_BYTES raised, which this script sets for such an N. If our
loader still refuses the file, that run is reported as refused.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench._support import (  # noqa: E402
    Processes,
    RedisDB,
    base_env,
    exit_on_sigterm,
    header,
    load_line,
    log_problems,
    log_tail,
    migrate,
    percentile,
    postgres_database,
    private_redis_db,
)

QUEUE = "celery"
TASK = "jobs.demo.noop"
SCHEDULERS = ("ours", "stock", "redbeat")
APPS = {"stock": "bench.stock_app", "redbeat": "bench.redbeat_app"}
# SPEC §3 refuses schedule files over 1 MiB; 50,000 of these jobs make about 2.5 MiB.
DEFAULT_MAX_SCHEDULE_BYTES = 1 << 20
BIG_SCHEDULE_BYTES = 64 << 20


class Reader(threading.Thread):
    """BRPOPs the queue and keeps (arrival time, raw message) for every message."""

    def __init__(self, db: RedisDB) -> None:
        super().__init__(name="queue-reader", daemon=True)
        self.db = db
        self.records: list[tuple[float, bytes]] = []
        self.error: BaseException | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            with self.db.client() as r:
                while not self._halt.is_set():
                    item = r.brpop([QUEUE], timeout=0.1)
                    if item is None:
                        continue
                    # Drain what is queued behind it in one round trip; a batch is stamped
                    # when it has been read, which errs late by at most that round trip.
                    rest = r.rpop(QUEUE, 1000) or []
                    now = time.time()
                    self.records.append((now, item[1]))
                    self.records.extend((now, raw) for raw in rest)
        except BaseException as exc:
            self.error = exc

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)

    def count_since(self, at: float) -> int:
        return sum(1 for t, _ in list(self.records) if t >= at)


@dataclass
class Result:
    scheduler: str
    jobs: int
    startup_s: float | None = None
    boundary: float | None = None
    lateness: list[float] = field(default_factory=list)  # seconds, sorted
    earlier: int = 0  # messages that arrived before the measured boundary
    notes: list[str] = field(default_factory=list)
    history: str = ""
    rss_mib: float | None = None  # the beat's resident memory when collection stopped
    peak_mib: float | None = None  # and its peak (VmHWM) until then


def next_boundary(after: float) -> float:
    return math.floor(after / 60) * 60 + 60


def lead_for(jobs: int) -> float:
    """Seconds before a minute boundary to start a beat of `jobs` jobs."""
    # Loading the schedule grows with N (at 50,000 jobs each beat needs tens of seconds);
    # a beat that is not ready in time costs a whole minute more. A beat runs for days
    # before a burst: ours gets the time to prepare it (about 1 ms a run), as it would, but
    # starts after the boundary before (every job is due every minute), not before it.
    return min(58.0, 20.0 + jobs * 0.0015)


def wait_for_start_slot(lead: float) -> float:
    """Sleep until `lead` s before a minute boundary (at most a minute); returns it."""
    now = time.time()
    boundary = next_boundary(now + lead)
    start_at = boundary - lead
    if start_at > now:
        print(
            f"  waiting {start_at - now:.0f}s to start {lead:.0f}s before {_hms(boundary)}",
            file=sys.stderr,
            flush=True,
        )
        time.sleep(start_at - now)
    return boundary


def schedule_text(jobs: int) -> str:
    lines = [
        "# bench/dispatch.py: every job due at each minute boundary",
        "timezone: UTC",
        "defaults: {overlap: allow}",
        "jobs:",
    ]
    lines += [f"  bench-{i:05d}: {{task: {TASK}, every: 60s}}" for i in range(jobs)]
    return "\n".join(lines) + "\n"


def schedule_refusal(path: Path, max_bytes: int) -> str:
    """'' if our loader accepts the schedule file, else its first problem."""
    from zoneinfo import ZoneInfo

    from scheduler.errors import ScheduleError
    from scheduler.schedule_file import load_schedule

    try:
        load_schedule(path, {TASK}, ZoneInfo("UTC"), max_bytes=max_bytes)
    except ScheduleError as exc:
        return str(exc.problems[0]) if exc.problems else str(exc)
    return ""


def run_one(kind: str, jobs: int, args: argparse.Namespace, db: RedisDB, tmp: Path) -> Result:
    result = Result(kind, jobs)
    workdir = tmp / f"{kind}-{jobs}"
    workdir.mkdir()
    procs = Processes(workdir)
    try:
        return _run(kind, jobs, args, db, workdir, procs, result)
    finally:
        if args.keep_logs:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            for log in workdir.glob("*.log"):
                shutil.copy(log, args.keep_logs / f"{kind}-{jobs}-{log.name}")


def _run(
    kind: str,
    jobs: int,
    args: argparse.Namespace,
    db: RedisDB,
    workdir: Path,
    procs: Processes,
    result: Result,
) -> Result:
    label = result.scheduler
    with ExitStack() as stack:
        stack.callback(procs.stop_all)
        env = base_env(SCHEDULER_BROKER_URL=db.url)
        engine = None
        if kind == "redbeat" and importlib.util.find_spec("redbeat") is None:
            result.notes.append('skipped: no celery-redbeat (pip install -e ".[bench]")')
            return result
        if kind == "ours":
            schedule = workdir / "schedules.yaml"
            schedule.write_text(schedule_text(jobs))
            app_module = "scheduler"
            max_bytes = DEFAULT_MAX_SCHEDULE_BYTES
            if schedule.stat().st_size > max_bytes:
                max_bytes = BIG_SCHEDULE_BYTES
                env["SCHEDULER_MAX_SCHEDULE_BYTES"] = str(max_bytes)
            refusal = schedule_refusal(schedule, max_bytes)
            if refusal:
                result.notes.append(f"refused: {refusal.replace(str(workdir) + '/', '')}")
                return result
            db_url = stack.enter_context(postgres_database(workdir))
            env.update(SCHEDULER_DATABASE_URL=db_url, SCHEDULER_SCHEDULE_FILE=str(schedule))
            migrate(env, workdir)
            from scheduler.history.db import make_engine

            engine = make_engine(db_url)
            stack.callback(engine.dispose)
        else:
            app_module = APPS[kind]
            env.update(
                BENCH_JOBS=str(jobs),
                BENCH_RESULT_BACKEND="none",
                BENCH_READY_FILE=str(workdir / "ready"),
                SCHEDULER_DATABASE_URL=f"sqlite:///{workdir / 'unused.sqlite'}",
                SCHEDULER_SCHEDULE_FILE=str(workdir / "schedules.yaml"),
            )
            # Only for the app's timezone (create_app reads it from the schedule file).
            (workdir / "schedules.yaml").write_text("timezone: UTC\njobs: {}\n")
        # Also RedBeat's clean state: its schedule, last runs and lock live in this DB.
        db.reset()

        lead = lead_for(jobs)
        boundary = wait_for_start_slot(lead)
        reader = Reader(db)
        reader.start()
        stack.callback(reader.stop)
        spawned = time.time()
        proc = procs.start(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                app_module,
                "beat",
                "-l",
                args.loglevel,
                "-s",
                str(workdir / "celerybeat-schedule"),
            ],
            env,
            "beat",
        )
        ready = wait_ready(proc, engine, workdir, deadline=boundary + 60 + lead)
        if ready is None:
            result.notes.append(
                f"beat exited with {proc.returncode}"
                if proc.poll() is not None
                else "beat not ready a minute after the boundary"
            )
            print(f"  {label} beat.log ends:\n{log_tail(workdir / 'beat.log')}", file=sys.stderr)
            return result
        result.startup_s = ready - spawned
        if ready > boundary - 1:
            result.notes.append(f"ready only at {ready - boundary:+.1f}s; next boundary measured")
            boundary = next_boundary(ready + 1)
        result.boundary = boundary
        end = boundary + args.window
        while time.time() < end and proc.poll() is None and reader.error is None:
            if time.time() >= boundary and reader.count_since(boundary) >= jobs:
                break
            time.sleep(0.05)
        time.sleep(0.2)  # let the reader drain the last batch
        result.rss_mib, result.peak_mib = memory_mib(proc.pid)
        procs.stop(proc)
        reader.stop()
        if reader.error is not None:
            result.notes.append(f"reader failed: {reader.error!r}")
        if proc.returncode not in (0, None) and time.time() < end:
            result.notes.append(f"beat exited with {proc.returncode} while measuring")
        analyse(result, reader.records, boundary, end, jobs, kind == "ours")
        if engine is not None:
            result.history = history_view(engine, boundary)
        problems = log_problems(workdir / "beat.log")
        if problems:
            result.notes.append("problems in beat log")
            print(f"  {label}, {jobs} jobs:\n{problems}", file=sys.stderr)
        if not db.still_ours():
            result.notes.append("Redis DB was flushed by someone else")
        return result


def wait_ready(
    proc: subprocess.Popen[bytes],
    engine: Engine | None,
    workdir: Path,
    deadline: float,
) -> float | None:
    """When the beat is ready to tick (its first heartbeat / beat_init), or None."""
    from sqlalchemy import select

    ready_file = workdir / "ready"
    while time.time() < deadline:
        if proc.poll() is not None:
            return None
        if engine is not None:
            from scheduler.history.models import Heartbeat

            table = Heartbeat.__table__
            with engine.connect() as conn:
                seen = conn.execute(
                    select(table.c.started_at).where(table.c.kind == "beat")
                ).scalar()
            if seen is not None:
                return seen.timestamp()
        elif ready_file.exists() and ready_file.read_text().strip():
            return float(ready_file.read_text())
        time.sleep(0.1)
    return None


def memory_mib(pid: int) -> tuple[float | None, float | None]:
    """Resident memory of a process now and at its peak, in MiB (None where unknown)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None, None
    found: dict[str, float] = {}
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) / 1024  # kB
    return found.get("VmRSS"), found.get("VmHWM")


def analyse(
    result: Result,
    records: list[tuple[float, bytes]],
    boundary: float,
    end: float,
    jobs: int,
    ours: bool,
) -> None:
    seen: set[str] = set()
    lateness = []
    for arrived, raw in records:
        headers = json.loads(raw)["headers"]
        if headers.get("task") != TASK:
            result.notes.append(f"unexpected task {headers.get('task')}")
            continue
        if arrived < boundary:
            result.earlier += 1
            continue
        if arrived > end:
            continue
        if headers["id"] in seen:
            result.notes.append(f"duplicate id {headers['id']}")
            continue
        seen.add(headers["id"])
        lateness.append(arrived - boundary)
    result.lateness = sorted(lateness)
    if ours:
        from scheduler.history.store import run_id_for

        tick = datetime.fromtimestamp(boundary, UTC)
        expected = {run_id_for(f"bench-{i:05d}", tick) for i in range(jobs)}
        if seen != expected:
            result.notes.append(
                f"{len(seen & expected)} of the ids are this tick's, {len(seen - expected)} others"
            )
    if result.earlier:
        result.notes.append(f"{result.earlier} messages before the boundary")


def history_view(engine: Engine, boundary: float) -> str:
    """What the run history says about the measured tick: rows, statuses, enqueued_at lag."""
    from sqlalchemy import select

    from scheduler.history.models import Run

    table = Run.__table__
    tick = datetime.fromtimestamp(boundary, UTC)
    with engine.connect() as conn:
        rows = conn.execute(
            select(table.c.status, table.c.enqueued_at).where(table.c.tick_at == tick)
        ).all()
    statuses: dict[str, int] = {}
    lags = []
    for status, enqueued_at in rows:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if enqueued_at is not None:
            lags.append((enqueued_at.timestamp() - boundary) * 1000)
    lags.sort()
    text = f"{len(rows)} runs with tick_at {tick:%H:%M:%S} (" + ", ".join(
        f"{n} {s}" for s, n in sorted(statuses.items())
    )
    text += ")"
    if lags:
        text += (
            f"; enqueued_at - tick_at p50 {percentile(lags, 0.5):.0f} ms, "
            f"p99 {percentile(lags, 0.99):.0f} ms, max {lags[-1]:.0f} ms"
        )
    return text


def table(results: list[Result], window: float) -> str:
    rows = [
        (
            "scheduler",
            "jobs",
            "startup s",
            "received",
            "first ms",
            "p50 ms",
            "p99 ms",
            "max ms",
            "all sent after s",
            "RSS MiB",
            "peak MiB",
        )
    ]
    for r in results:
        late = [x * 1000 for x in r.lateness]
        complete = len(late) >= r.jobs
        rows.append(
            (
                r.scheduler,
                str(r.jobs),
                f"{r.startup_s:.1f}" if r.startup_s is not None else "-",
                str(len(late)) if r.boundary is not None else "-",
                f"{late[0]:.0f}" if late else "-",
                f"{percentile(late, 0.5):.0f}" if late else "-",
                f"{percentile(late, 0.99):.0f}" if late else "-",
                f"{late[-1]:.0f}" if late else "-",
                f"{late[-1] / 1000:.2f}"
                if complete
                else (f"not in {window:.0f}s" if r.boundary is not None else "-"),
                f"{r.rss_mib:.0f}" if r.rss_mib is not None else "-",
                f"{r.peak_mib:.0f}" if r.peak_mib is not None else "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append(
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _hms(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="1000 jobs only, instead of 1000 and 10000"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        nargs="+",
        help="job counts, at most 99,999 (default 1000 10000; the full table: 1000 10000 50000)",
    )
    parser.add_argument("--schedulers", nargs="+", choices=SCHEDULERS, default=list(SCHEDULERS))
    parser.add_argument(
        "--window", type=float, default=55.0, help="seconds after the boundary to collect"
    )
    parser.add_argument("--loglevel", default="info", help="beat -l (default info)")
    parser.add_argument("--redis-db", type=int, help="Redis DB number (default: 0 if empty)")
    parser.add_argument("--keep-logs", type=Path, help="copy the beat logs into this directory")
    args = parser.parse_args()
    args.jobs = args.jobs or ([1000] if args.quick else [1000, 10000])
    if not all(1 <= n <= 99_999 for n in args.jobs):
        # Job names are bench-00000..bench-99999.
        parser.error("--jobs must be between 1 and 99,999")
    if not 1 <= args.window <= 58:
        parser.error("--window must be between 1 and 58 seconds")
    exit_on_sigterm()

    print(header("beat dispatch lateness: N jobs due at the same minute boundary, no worker"))
    print(
        f"jobs {', '.join(map(str, args.jobs))}; beat -l {args.loglevel}; "
        f"collecting up to {args.window:.0f}s after the boundary",
        flush=True,
    )
    results: list[Result] = []
    with ExitStack() as stack:
        db = stack.enter_context(private_redis_db("dispatch", args.redis_db))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-dispatch-")))
        print(f"Redis DB {db.number}", flush=True)
        for jobs in args.jobs:
            for kind in args.schedulers:
                result = run_one(kind, jobs, args, db, tmp)
                late = result.lateness
                print(
                    f"  {result.scheduler}, {jobs} jobs"
                    + (f" at {_hms(result.boundary)}" if result.boundary else "")
                    + f": {len(late)} received"
                    + (f", max {late[-1] * 1000:.0f} ms" if late else "")
                    + (f" ({'; '.join(result.notes)})" if result.notes else ""),
                    file=sys.stderr,
                    flush=True,
                )
                results.append(result)
    print()
    print(table(results, args.window))
    notes = [f"{r.scheduler}, {r.jobs} jobs: {'; '.join(r.notes)}" for r in results if r.notes] + [
        f"{r.scheduler}, {r.jobs} jobs, history: {r.history}" for r in results if r.history
    ]
    if notes:
        print()
        print("\n".join(notes))
    print(f"\n{load_line()} at the end")


if __name__ == "__main__":
    main()
