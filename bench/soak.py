"""Soak: two beats SIGKILLed at random for minutes while 50 jobs tick; is every tick run once?

    python bench/soak.py [--quick] [--minutes 10] [--seed 1] [--kill-workers]
        [--redis-db N] [--keep-logs DIR]

Needs Redis at 127.0.0.1:6379 and PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth),
like the tests (SCHEDULER_TEST_REDIS_URL, SCHEDULER_TEST_POSTGRES_URL change them).

Set-up: a private Redis DB as broker (DB 0 if empty, see bench/_support.py), a fresh
PostgreSQL database migrated with `python -m scheduler db upgrade`, a schedule of 50 jobs
`jobs.demo.noop`, `every: 1s` and `every: 2s` alternately (37.5 runs a second),
`overlap: allow`, two workers `celery -A scheduler worker -c 2` and two beats
`celery -A scheduler beat`, every process in its own session.

Soak: for --minutes (default 10, --quick 2), every 5-15 s (random, seeded by --seed) one of
the two beats is SIGKILLed with its whole process group and restarted 0.5-3 s later. With
--kill-workers, every 15-45 s a pool child of a random worker is SIGKILLed too (Celery forks
a new one; a run it held is redelivered and runs again with attempts + 1, which this script
counts as duplicated: it is an execution of the job more than once). Then 20 s without
kills: a claim orphaned by the last kill is re-sent by the surviving beat only after
SCHEDULER_UNSENT_AFTER (10 s) plus up to RECOVER_EVERY (5 s), and stopping the beats before
that would leave it queued by design. Then both beats are stopped together (SIGTERM, half a second
after a tick, when they are idle: Celery beat raises SystemExit wherever the signal lands),
the workers drain (up to 90 s: queue and unacknowledged messages empty, no run running)
and are stopped.

Figures, for the ticks due in [first tick at or after start + 5 s, stop - 5 s] (start: both
beats ready and the first kill scheduled; stop: the SIGTERM to the beats), computed from the
schedule (every k x interval from the epoch) and compared with the `runs` table:
  with a row   a run row for (job, tick);
  sent         its enqueued_at or started_at is set;
  duplicated   more than one `Task jobs.demo.noop[<id>] succeeded` line in the worker logs,
               or attempts > 1;
  lost         no row, or a row that is not `succeeded` at the end;
  stuck        (every run, not only the window) queued, running or retrying at the end;
               those claimed in the last second before the stop and never sent are shown
               apart (the next beat to start would send them);
  lateness     enqueued_at - tick_at (the beat's record of the publish; the worker sets it
               to started_at if the beat never did) and started_at - tick_at: p50, p99 and
               max, and p99 over the "quiet" ticks, those with no beat kill within +-3 s
               of their second.
Target: 0 duplicated, 0 lost, 0 stuck; the exit status is 1 when it is missed, and then up to
10 examples of each problem are printed with their run ids and worker log lines.

Wall time: --minutes plus about a minute (start-up, 20 s settle, drain, clean-up). The Redis
DB is flushed, the database dropped and every process started here stopped on exit.
"""

from __future__ import annotations

import argparse
import bisect
import math
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    migrate,
    percentile,
    postgres_database,
    private_redis_db,
)

TASK = "jobs.demo.noop"
JOBS = 50
INTERVALS = (1, 2)  # seconds, alternately
BEATS = 2
WORKERS = 2
CONCURRENCY = 2
BEAT_KILL_EVERY = (5.0, 15.0)
BEAT_RESTART_AFTER = (0.5, 3.0)
WORKER_KILL_EVERY = (15.0, 45.0)
SETTLE = 20.0  # seconds without kills before the beats are stopped
MARGIN = 5.0  # the window starts this long after the start and ends this long before stop
STOP_PHASE = 0.5  # the beats are stopped this far into a second (ticks are on whole seconds)
QUIET = 3.0  # a tick is "quiet" if no beat kill happened within this many seconds of it
START_TIMEOUT = 90.0
DRAIN_TIMEOUT = 90.0
QUEUE = "celery"
UNACKED = "unacked"  # kombu's Redis transport keeps delivered, unacknowledged messages here
SUCCEEDED = re.compile(r"Task jobs\.demo\.noop\[([0-9a-f-]+)\] succeeded")
ACTIVE = ("queued", "running", "retrying")
EXAMPLES = 10


def job_name(i: int) -> str:
    return f"soak-{i:02d}"


def interval_of(i: int) -> int:
    return INTERVALS[i % len(INTERVALS)]


def schedule_text() -> str:
    lines = [
        "# bench/soak.py: 50 no-op jobs every 1 s or 2 s, beats killed at random",
        "timezone: UTC",
        "defaults: {overlap: allow}",
        "jobs:",
    ]
    lines += [f"  {job_name(i)}: {{task: {TASK}, every: {interval_of(i)}s}}" for i in range(JOBS)]
    return "\n".join(lines) + "\n"


@dataclass
class Soak:
    """The processes of one soak and what was done to them."""

    procs: Processes
    env: dict[str, str]
    workdir: Path
    beats: list[subprocess.Popen[bytes]] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    beat_logs: list[Path] = field(default_factory=list)
    worker_logs: list[Path] = field(default_factory=list)
    starts: int = 0
    beat_kills: list[float] = field(default_factory=list)  # wall-clock times
    worker_kills: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def celery(self, *args: str, name: str) -> subprocess.Popen[bytes]:
        return self.procs.start(
            [sys.executable, "-m", "celery", "-A", "scheduler", *args], self.env, name
        )

    def start_worker(self, i: int) -> subprocess.Popen[bytes]:
        node = f"soak-w{i}-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
        proc = self.celery(
            *("worker", "-P", "prefork", "-c", str(CONCURRENCY), "-l", "info", "-Q", QUEUE),
            *("-n", node, "--without-mingle", "--without-gossip"),
            name=f"worker-{i}",
        )
        self.worker_logs.append(self.workdir / f"worker-{i}.log")
        return proc

    def start_beat(self, slot: int) -> subprocess.Popen[bytes]:
        self.starts += 1
        name = f"beat-{slot}-{self.starts:03d}"
        proc = self.celery(
            "beat", "-l", "info", "-s", str(self.workdir / f"{name}-state"), name=name
        )
        self.beat_logs.append(self.workdir / f"{name}.log")
        return proc


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL one of our processes with its whole process group, and reap it."""
    if proc.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def pool_children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def alive_beats(engine: Engine) -> int:
    from sqlalchemy import func, select

    from scheduler.history.models import Heartbeat

    table = Heartbeat.__table__
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(table).where(table.c.kind == "beat")
            ).scalar()
            or 0
        )


def servers(db: RedisDB, engine: Engine) -> tuple[str, str]:
    """Redis run_id and PostgreSQL start time: a change means a server restarted meanwhile."""
    from sqlalchemy import text

    with db.client() as r:
        redis_run = str(r.info("server").get("run_id"))
    with engine.connect() as conn:
        pg_start = str(conn.execute(text("SELECT pg_postmaster_start_time()")).scalar())
    return redis_run, pg_start


def wait_started(soak: Soak, engine: Engine) -> None:
    """Workers ready, both beats heartbeating and a first tick run; SystemExit otherwise."""
    from sqlalchemy import text

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        for proc in soak.workers + soak.beats:
            if proc.poll() is not None:
                raise SystemExit(f"a process exited at start with {proc.returncode}")
        workers_ready = all(
            " ready." in log.read_text(errors="replace") for log in soak.worker_logs
        )
        if workers_ready and alive_beats(engine) >= BEATS:
            with engine.connect() as conn:
                done = conn.execute(
                    text("SELECT count(*) FROM runs WHERE status = 'succeeded'")
                ).scalar()
            if done:
                return
        time.sleep(0.2)
    raise SystemExit(f"workers and beats not running {START_TIMEOUT:.0f}s after start")


def run_soak(soak: Soak, args: argparse.Namespace) -> tuple[float, float]:
    """Kill and restart beats (and pool children) for --minutes; returns (start, stop)."""
    beat_rng = random.Random(args.seed)
    worker_rng = random.Random(f"{args.seed}/workers")
    start = time.time()
    began = time.monotonic()
    end = began + args.minutes * 60
    next_beat_kill = began + beat_rng.uniform(*BEAT_KILL_EVERY)
    next_worker_kill = (
        began + worker_rng.uniform(*WORKER_KILL_EVERY) if args.kill_workers else math.inf
    )
    restart: tuple[float, int] | None = None  # (when, slot)
    last_report = began
    while True:
        now = time.monotonic()
        if restart is not None and now >= restart[0]:
            soak.beats[restart[1]] = soak.start_beat(restart[1])
            restart = None
            continue
        if now >= end and restart is None:
            break
        if now >= next_beat_kill and now < end:
            # Kills are >= 5 s apart, restarts <= 3 s later: never both beats killed at once.
            slot = beat_rng.randrange(BEATS)
            soak.beat_kills.append(time.time())
            kill_group(soak.beats[slot])
            restart = (time.monotonic() + beat_rng.uniform(*BEAT_RESTART_AFTER), slot)
            next_beat_kill = now + beat_rng.uniform(*BEAT_KILL_EVERY)
            continue
        if now >= next_worker_kill and now < end:
            worker = soak.workers[worker_rng.randrange(WORKERS)]
            children = pool_children(worker.pid) if worker.poll() is None else []
            if children:
                os.kill(worker_rng.choice(sorted(children)), signal.SIGKILL)
                soak.worker_kills.append(time.time())
            next_worker_kill = now + worker_rng.uniform(*WORKER_KILL_EVERY)
            continue
        for i, proc in enumerate(soak.workers):
            if proc.poll() is not None:
                raise SystemExit(f"worker-{i} exited with {proc.returncode} during the soak")
        if now - last_report >= 30:
            last_report = now
            print(
                f"  {now - began:4.0f}s: {len(soak.beat_kills)} beat kills, "
                f"{len(soak.worker_kills)} pool child kills, {load_line()}",
                file=sys.stderr,
                flush=True,
            )
        wake = min(next_beat_kill, next_worker_kill, end, restart[0] if restart else math.inf)
        time.sleep(max(0.0, min(0.2, wake - time.monotonic())))
    # Settle: both beats up, no kills, so that the last orphaned claim is re-sent.
    settle_end = time.monotonic() + SETTLE
    while time.monotonic() < settle_end:
        for i, proc in enumerate(soak.beats):
            if proc.poll() is not None:
                soak.notes.append(f"beat slot {i} exited by itself with {proc.returncode}")
                soak.beats[i] = soak.start_beat(i)
        time.sleep(0.2)
    # Both beats at once, half a second after a tick: Celery beat turns SIGTERM into
    # SystemExit wherever it is, and one that lands between a claim and its publish leaves
    # the run queued until a beat runs again (by design; counted apart in the table).
    time.sleep((STOP_PHASE - time.time()) % 1.0)
    stop = time.time()
    for proc in soak.beats:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in soak.beats:
        soak.procs.stop(proc)
    return start, stop


def drain(soak: Soak, db: RedisDB, engine: Engine) -> float:
    """Wait until nothing is queued, unacknowledged or running; seconds waited."""
    from sqlalchemy import text

    began = time.monotonic()
    deadline = began + DRAIN_TIMEOUT
    calm = 0
    with db.client() as r:
        while time.monotonic() < deadline:
            queued, unacked = r.llen(QUEUE), r.hlen(UNACKED)
            with engine.connect() as conn:
                running = conn.execute(
                    text("SELECT count(*) FROM runs WHERE status IN ('running', 'retrying')")
                ).scalar()
            calm = calm + 1 if queued == 0 and unacked == 0 and running == 0 else 0
            if calm >= 3:  # three times in a row, 0.5 s apart
                return time.monotonic() - began
            time.sleep(0.5)
    soak.notes.append(f"workers not drained after {DRAIN_TIMEOUT:.0f}s")
    return time.monotonic() - began


@dataclass
class Figures:
    window: tuple[int, int]
    due: int = 0
    with_row: int = 0
    sent: int = 0
    succeeded: int = 0
    duplicated: int = 0
    executed_twice: int = 0
    attempts_over_1: int = 0
    lost: int = 0
    lost_no_row: int = 0
    stuck: int = 0
    stuck_in_window: int = 0
    stuck_at_stop: int = 0  # claimed in the last second before the beats' SIGTERM, never sent
    statuses: Counter[str] = field(default_factory=Counter)
    all_runs: int = 0
    all_duplicated: int = 0
    rows_outside: int = 0  # rows whose tick is not on the schedule's grid
    no_log_line: int = 0  # succeeded in the window with no `succeeded` log line
    enqueued: list[float] = field(default_factory=list)
    enqueued_quiet: list[float] = field(default_factory=list)
    started: list[float] = field(default_factory=list)
    started_quiet: list[float] = field(default_factory=list)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def example(self, kind: str, text: str) -> None:
        found = self.examples.setdefault(kind, [])
        if len(found) < EXAMPLES:
            found.append(text)


def analyse(
    engine: Engine, soak: Soak, start: float, stop: float, worker_text: dict[Path, str]
) -> Figures:
    from sqlalchemy import text

    from scheduler.history.store import run_id_for

    window = (math.ceil(start + MARGIN), math.floor(stop - MARGIN))
    figures = Figures(window)
    executed: Counter[str] = Counter()
    for body in worker_text.values():
        executed.update(SUCCEEDED.findall(body))
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, job_name, status, tick_at, created_at, enqueued_at, started_at, "
                "attempts, trigger FROM runs"
            )
        ).all()
    by_tick: dict[tuple[str, int], Any] = {}
    intervals = {job_name(i): interval_of(i) for i in range(JOBS)}
    for row in rows:
        figures.all_runs += 1
        if row.status in ACTIVE:
            figures.stuck += 1
            if (
                row.status == "queued"
                and row.enqueued_at is None
                and row.created_at.timestamp() >= stop - 1.0
            ):
                figures.stuck_at_stop += 1
            figures.example(
                "stuck", f"{row.id} {row.job_name} tick {_iso(row.tick_at)} status {row.status}"
            )
        if executed[row.id] > 1 or (row.attempts or 0) > 1:
            figures.all_duplicated += 1
        tick = row.tick_at.timestamp() if row.tick_at is not None else None
        interval = intervals.get(row.job_name)
        if tick is None or interval is None or tick != int(tick) or int(tick) % interval:
            figures.rows_outside += 1
            figures.example("off the schedule", f"{row.id} {row.job_name} tick {row.tick_at}")
            continue
        by_tick[(row.job_name, int(tick))] = row
    kills = sorted(soak.beat_kills)

    def quiet(tick: int) -> bool:
        i = bisect.bisect_left(kills, tick - QUIET)
        return i == len(kills) or kills[i] > tick + QUIET

    first, last = window
    for i in range(JOBS):
        name, interval = job_name(i), interval_of(i)
        for tick in range(math.ceil(first / interval) * interval, last + 1, interval):
            figures.due += 1
            row = by_tick.get((name, tick))
            expected_id = run_id_for(name, datetime.fromtimestamp(tick, UTC))
            if row is None:
                figures.lost += 1
                figures.lost_no_row += 1
                figures.example("lost", f"{expected_id} {name} tick {_iso(tick)}: no run row")
                continue
            figures.with_row += 1
            figures.statuses[row.status] += 1
            if row.status in ACTIVE:
                figures.stuck_in_window += 1
            if row.id != expected_id:
                figures.example("unexpected id", f"{row.id} {name} tick {_iso(tick)}")
            if row.enqueued_at is not None or row.started_at is not None:
                figures.sent += 1
            if row.status == "succeeded":
                figures.succeeded += 1
                if executed[row.id] == 0:
                    figures.no_log_line += 1
            else:
                figures.lost += 1
                figures.example(
                    "lost",
                    f"{row.id} {name} tick {_iso(tick)}: status {row.status}, "
                    f"attempts {row.attempts}, enqueued {_iso(row.enqueued_at)}, "
                    f"started {_iso(row.started_at)}",
                )
            twice = executed[row.id] > 1
            again = (row.attempts or 0) > 1
            figures.executed_twice += twice
            figures.attempts_over_1 += again
            if twice or again:
                figures.duplicated += 1
                figures.example(
                    "duplicated",
                    f"{row.id} {name} tick {_iso(tick)}: {executed[row.id]} succeeded lines, "
                    f"attempts {row.attempts}, status {row.status}",
                )
            calm = quiet(tick)
            if row.enqueued_at is not None:
                late = row.enqueued_at.timestamp() - tick
                figures.enqueued.append(late)
                if calm:
                    figures.enqueued_quiet.append(late)
            if row.started_at is not None:
                late = row.started_at.timestamp() - tick
                figures.started.append(late)
                if calm:
                    figures.started_quiet.append(late)
    for values in (
        figures.enqueued,
        figures.enqueued_quiet,
        figures.started,
        figures.started_quiet,
    ):
        values.sort()
    return figures


def _iso(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    return value.astimezone(UTC).strftime("%H:%M:%S.%f")[:-3]


def _ms(values: Sequence[float], q: float | None) -> str:
    if not values:
        return "-"
    return f"{(values[-1] if q is None else percentile(list(values), q)) * 1000:.0f}"


def _format(rows: Sequence[tuple[str, ...]]) -> str:
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


def tables(f: Figures, soak: Soak, start: float, stop: float) -> str:
    first, last = f.window
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(f.statuses.items())) or "-"
    counts = [
        ("figure", "value"),
        ("window (UTC)", f"{_iso(first)[:8]} - {_iso(last)[:8]} ({last - first + 1} s)"),
        ("soak (UTC)", f"{_iso(start)[:8]} - {_iso(stop)[:8]} ({stop - start:.0f} s)"),
        ("beat kills (SIGKILL, process group)", str(len(soak.beat_kills))),
        ("pool child kills (SIGKILL)", str(len(soak.worker_kills))),
        ("ticks due in the window", str(f.due)),
        ("  with a run row", str(f.with_row)),
        ("  sent (enqueued_at or started_at set)", str(f.sent)),
        ("  succeeded", str(f.succeeded)),
        ("  row statuses", statuses),
        ("  duplicated", str(f.duplicated)),
        ("    executed twice (worker logs)", str(f.executed_twice)),
        ("    attempts > 1", str(f.attempts_over_1)),
        ("  lost (no row, or not succeeded)", str(f.lost)),
        ("    no row", str(f.lost_no_row)),
        ("runs in the database", str(f.all_runs)),
        ("  duplicated (whole run)", str(f.all_duplicated)),
        ("  stuck queued/running/retrying at the end", str(f.stuck)),
        ("    of which in the window", str(f.stuck_in_window)),
        ("    of which claimed as the beats stopped, unsent", str(f.stuck_at_stop)),
        ("  ticks off the schedule's grid", str(f.rows_outside)),
    ]
    lateness = [
        ("lateness, ms", "ticks", "p50", "p99", "max", "quiet ticks", "p99 quiet", "max quiet")
    ]
    for label, values, calm in (
        ("enqueued_at - tick_at", f.enqueued, f.enqueued_quiet),
        ("started_at - tick_at", f.started, f.started_quiet),
    ):
        lateness.append(
            (
                label,
                str(len(values)),
                _ms(values, 0.5),
                _ms(values, 0.99),
                _ms(values, None),
                str(len(calm)),
                _ms(calm, 0.99),
                _ms(calm, None),
            )
        )
    return _format(counts) + "\n\n" + _format(lateness)


def evidence(f: Figures, soak: Soak, worker_text: dict[Path, str]) -> str:
    """Examples of each problem with the worker log lines that name their run ids."""
    parts = []
    for kind, found in f.examples.items():
        parts.append(f"{kind} (first {len(found)}):")
        for line in found:
            parts.append(f"  {line}")
            run_id = line.split()[0]
            for log, body in worker_text.items():
                for n, text in enumerate(body.splitlines(), 1):
                    if run_id in text:
                        parts.append(f"    {log.name}:{n}: {text[:240]}")
    return "\n".join(parts)


def log_counts(soak: Soak, worker_text: dict[Path, str]) -> str:
    beats = "\n".join(log.read_text(errors="replace") for log in soak.beat_logs if log.exists())
    workers = "\n".join(worker_text.values())
    resent = sum(
        int(n) for n in re.findall(r"sending again (\d+) runs claimed but never recorded", beats)
    )
    reaped = len(re.findall(r"run \S+ lost \(its worker stopped\)", beats))
    missed = len(re.findall(r"tick \S+ missed", beats))
    dupes = workers.count("duplicate delivery, not run again")
    return (
        f"beat logs: {resent} claims re-sent by a beat (recovery of unsent claims), "
        f"{reaped} runs reaped as lost, {missed} ticks logged missed; "
        f"worker logs: {dupes} duplicate deliveries acknowledged without running"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2 minutes instead of 10")
    parser.add_argument("--minutes", type=float, help="minutes of killing beats (default 10)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the kill times (default 1)")
    parser.add_argument(
        "--kill-workers", action="store_true", help="also SIGKILL a worker pool child now and then"
    )
    parser.add_argument("--redis-db", type=int, help="Redis DB number (default: 0 if empty)")
    parser.add_argument("--keep-logs", type=Path, help="copy the beat and worker logs here")
    args = parser.parse_args()
    if args.minutes is None:
        args.minutes = 2.0 if args.quick else 10.0
    if not 0.25 <= args.minutes <= 24 * 60:
        parser.error("--minutes must be between 0.25 and 1440")
    exit_on_sigterm()

    print(header("soak: 2 beats SIGKILLed at random, 2 workers, 50 jobs every 1-2 s"))
    print(f"command: {shlex.join(sys.orig_argv)}")
    print(
        f"{JOBS} jobs {TASK} every {' or '.join(f'{k}s' for k in INTERVALS)}, overlap: allow; "
        f"{BEATS} beats, {WORKERS} workers -P prefork -c {CONCURRENCY}; {args.minutes:g} min "
        f"of kills, seed {args.seed}" + (", pool children killed too" if args.kill_workers else ""),
        flush=True,
    )
    with ExitStack() as stack:
        db = stack.enter_context(private_redis_db("soak", args.redis_db))
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-soak-")))
        db_url = stack.enter_context(postgres_database(workdir))
        print(f"Redis DB {db.number}", flush=True)
        schedule = workdir / "schedules.yaml"
        schedule.write_text(schedule_text())
        env = base_env(
            SCHEDULER_BROKER_URL=db.url,
            SCHEDULER_DATABASE_URL=db_url,
            SCHEDULER_SCHEDULE_FILE=str(schedule),
        )
        migrate(env, workdir)
        db.reset()
        from scheduler.history.db import make_engine

        engine = make_engine(db_url)
        stack.callback(engine.dispose)
        if args.keep_logs:  # runs after stop_all below (an ExitStack unwinds in reverse)
            stack.callback(_keep_logs, workdir, args.keep_logs)
        procs = Processes(workdir)
        stack.callback(procs.stop_all)
        soak = Soak(procs, env, workdir)
        before = servers(db, engine)
        soak.workers = [soak.start_worker(i) for i in range(WORKERS)]
        soak.beats = [soak.start_beat(i) for i in range(BEATS)]
        wait_started(soak, engine)
        print("  started; killing beats", file=sys.stderr, flush=True)
        start, stop = run_soak(soak, args)
        print("  beats stopped; draining the workers", file=sys.stderr, flush=True)
        drained = drain(soak, db, engine)
        for proc in soak.workers:
            procs.stop(proc)
        worker_text = {log: log.read_text(errors="replace") for log in soak.worker_logs}
        figures = analyse(engine, soak, start, stop, worker_text)
        after = servers(db, engine)
        for name, was, now in zip(("Redis", "PostgreSQL"), before, after, strict=True):
            if was != now:
                soak.notes.append(f"{name} was restarted during the soak (not by this script)")
        if not db.still_ours():
            soak.notes.append("Redis DB was flushed by someone else")
        problems = "\n".join(
            p for p in (log_problems(log) for log in soak.worker_logs + soak.beat_logs) if p
        )
        if problems:
            print(f"log problems:\n{problems}", file=sys.stderr)
        print()
        print(tables(figures, soak, start, stop))
        print()
        print(log_counts(soak, worker_text))
        print(f"workers drained in {drained:.1f}s after the beats stopped")
        if figures.no_log_line:
            print(f"{figures.no_log_line} succeeded runs have no `succeeded` line in the logs")
        for note in soak.notes:
            print(f"note: {note}")
        met = figures.duplicated == 0 and figures.lost == 0 and figures.stuck == 0
        print(
            f"target 0 duplicated, 0 lost, 0 stuck: {'met' if met else 'NOT MET'} "
            f"({figures.duplicated} duplicated, {figures.lost} lost, {figures.stuck} stuck)"
        )
        if figures.examples:
            print()
            print(evidence(figures, soak, worker_text))
        print(f"\n{load_line()} at the end")
        return 0 if met else 1


def _keep_logs(workdir: Path, into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    for log in workdir.glob("*.log"):
        shutil.copy(log, into / log.name)


if __name__ == "__main__":
    sys.exit(main())
