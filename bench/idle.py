"""Beat idle cost, start-up and reload with many jobs that are not due: ours, stock, RedBeat.

    python bench/idle.py [--quick] [--jobs 10000 100000] [--window 60]
        [--schedulers ours stock redbeat] [--keep-logs DIR]

Needs Redis at 127.0.0.1:6379 and PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth),
like the tests (SCHEDULER_TEST_REDIS_URL, SCHEDULER_TEST_POSTGRES_URL change them).

Per N and scheduler, two beat processes one after the other, against a flushed private
Redis DB with no worker: N jobs `jobs.demo.noop` due once a year (`cron: "0 0 1 1 *"`;
crontab(0, 0, 1, 1) for the peers), so none is due while measuring.

  start-up  N idle jobs plus `bench-first`, due every second. `ready` is when the beat has
            built its scheduler (ours: its first heartbeat row; peers: `beat_init`);
            `start-up` is from spawning the process to the first message in the broker
            (BRPOP of the `celery` list). Then, with the 1 s job still running, one job is
            added (`reload, busy`, below).
  idle      N idle jobs only. Once the beat is ready and has gone quiet (under 10 % of a
            core over one second) and --settle seconds more, CPU time (utime + stime of the
            beat and its children, /proc) over --window seconds gives CPU s/min and % of one
            core; RSS (and the peak, VmHWM) is read at the end. Then one job is added and
            the time to its first message is the `reload` figure.

Adding one job `bench-reload: every 1s`: ours, the schedule file is rewritten with it (to a
temporary file, then renamed over it, as editors do), timed from the rename; RedBeat has no
file, its equivalent is saving a RedBeatSchedulerEntry to Redis, timed from the save; stock
beat reads its schedule only at start: `n/a` (a restart costs its start-up). Both ours and
RedBeat tick the new job on a one-second grid, so up to ~1 s of each figure is that grid.

Our beat runs as `celery -A scheduler beat` with
SCHEDULER_MAX_SCHEDULE_BYTES=64 MiB (a 100,000-job file is ~5.5 MB) and a fresh migrated
PostgreSQL history database per process; the peers run bench/idle_app.py. CPU and RSS are
the beat process's own: the work it causes in Redis or PostgreSQL is not counted.

Wall time: --quick (10,000 jobs, 20 s windows) ~4 minutes; the default (10,000 and 100,000,
60 s windows) ~20 minutes, most of it the 100,000-job start-ups.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

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
    postgres_database,
    private_redis_db,
)

QUEUE = "celery"
TASK = "jobs.demo.noop"
FIRST, ADDED = "bench-first", "bench-reload"
JOB_HEADER = "scheduler_job"  # scheduler.history.recording.JOB_HEADER, without importing it
MAX_SCHEDULE_BYTES = 64 << 20
CLK_TCK = os.sysconf("SC_CLK_TCK")
QUIET_CORE = 0.10  # fraction of a core under which a beat counts as done starting up


class Reader(threading.Thread):
    """BRPOPs the queue and keeps (arrival time, job name) for every message."""

    def __init__(self, db: RedisDB) -> None:
        super().__init__(name="queue-reader", daemon=True)
        self.db = db
        self.records: list[tuple[float, str]] = []
        self.outages = 0
        self._halt = threading.Event()

    def run(self) -> None:
        import redis

        with self.db.client() as r:
            while not self._halt.is_set():
                try:
                    item = r.brpop([QUEUE], timeout=0.1)
                except redis.ConnectionError:
                    # Other work on this machine restarts Redis now and then (chaos tests).
                    self.outages += 1
                    time.sleep(0.5)
                    continue
                if item is not None:
                    self.records.append((time.time(), job_of(item[1])))

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)

    def first(self, job: str, after: float) -> float | None:
        return next((t for t, name in list(self.records) if name == job and t >= after), None)

    def wait(
        self, job: str, after: float, deadline: float, proc: subprocess.Popen[bytes]
    ) -> float | None:
        while time.time() < deadline and proc.poll() is None:
            found = self.first(job, after)
            if found is not None:
                return found
            time.sleep(0.02)
        return self.first(job, after)


def job_of(raw: bytes) -> str:
    """Ours names the job in a header; the peers' 1 s entries here are tasks of their name."""
    headers = json.loads(raw).get("headers", {})
    return str(headers.get(JOB_HEADER) or headers.get("task"))


# -- the beat process from outside: CPU, memory, log -----------------------------------------


def _stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # the name may hold spaces or parentheses


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                children.setdefault(int(_stat(int(entry.name))[1]), []).append(int(entry.name))
            except (OSError, ValueError):
                continue  # exited while we looked
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, []))
    return pids


def cpu_seconds(root: int) -> float:
    """utime + stime of a process and its live descendants, plus its reaped children's."""
    ticks = 0
    for pid in _tree(root):
        try:
            fields = _stat(pid)
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
        if pid == root:
            ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


def memory_mb(root: int) -> tuple[float, float]:
    """(RSS of the process tree, the largest peak RSS of one of its processes), in MB."""
    rss = peak = 0
    for pid in _tree(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        values = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M))
        rss += int(values.get("VmRSS", 0))
        peak = max(peak, int(values.get("VmHWM", 0)))
    return rss / 1024, peak / 1024


_LOG_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): [^\]]*\] (.*)$")


def log_time(log: Path, needle: str, after: float = 0.0) -> float | None:
    """When the first log line containing `needle` at or after `after` was written."""
    if not log.exists():
        return None
    for line in log.read_text(errors="replace").splitlines():
        found = _LOG_LINE.match(line)
        if found and needle in found.group(2):
            at = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            if at >= after - 0.001:
                return at
    return None


# -- one beat process --------------------------------------------------------------------------


@dataclass
class Result:
    scheduler: str
    jobs: int
    ready_s: float | None = None
    startup_s: float | None = None
    cpu_per_min: float | None = None
    rss_mb: float | None = None
    peak_mb: float | None = None
    reload_s: float | None = None
    reload_busy_s: float | None = None
    notes: list[str] = field(default_factory=list)


def schedule_text(jobs: int, extra: tuple[str, ...] = ()) -> str:
    lines = ["# bench/idle.py: jobs due once a year", "timezone: UTC", "jobs:"]
    lines += [f'  idle-{i:06d}: {{task: {TASK}, cron: "0 0 1 1 *"}}' for i in range(jobs)]
    # overlap: allow, as the peers send every tick whether or not the last one ran.
    lines += [f"  {name}: {{task: {TASK}, every: 1s, overlap: allow}}" for name in extra]
    return "\n".join(lines) + "\n"


@dataclass
class Beat:
    """How to start one scheduler with N idle jobs (and perhaps the 1 s job), and add a job."""

    kind: str
    jobs: int
    db: RedisDB
    workdir: Path
    stack: ExitStack
    frequent: bool
    engine: object = None

    def command(self) -> tuple[list[str], dict[str, str]]:
        argv = [sys.executable, "-m", "celery", "-A", "bench.idle_app", "beat", "-l", "info"]
        argv += ["-s", str(self.workdir / "celerybeat-schedule")]
        schedule = self.workdir / "schedules.yaml"
        env = base_env(SCHEDULER_BROKER_URL=self.db.url, SCHEDULER_SCHEDULE_FILE=str(schedule))
        if self.kind == "ours":
            argv[4] = "scheduler"
            schedule.write_text(schedule_text(self.jobs, (FIRST,) if self.frequent else ()))
            db_url = self.stack.enter_context(postgres_database(self.workdir))
            env.update(
                SCHEDULER_DATABASE_URL=db_url,
                SCHEDULER_MAX_SCHEDULE_BYTES=str(MAX_SCHEDULE_BYTES),
            )
            migrate(env, self.workdir)
            from scheduler.history.db import make_engine

            engine = make_engine(db_url)
            self.stack.callback(engine.dispose)
            self.engine = engine
        else:
            # The file only gives the app its timezone (create_app reads it).
            schedule.write_text("timezone: UTC\njobs: {}\n")
            env.update(
                BENCH_PEER=self.kind,
                BENCH_JOBS=str(self.jobs),
                BENCH_RESULT_BACKEND="none",
                BENCH_READY_FILE=str(self.workdir / "ready"),
                SCHEDULER_DATABASE_URL=f"sqlite:///{self.workdir / 'unused.sqlite'}",
            )
            if self.frequent:
                env["BENCH_FREQUENT"] = FIRST
        return argv, env

    def ready_at(self) -> float | None:
        if self.engine is None:
            ready = self.workdir / "ready"
            text = ready.read_text().strip() if ready.exists() else ""
            return float(text) if text else None
        from sqlalchemy import select

        from scheduler.history.models import Heartbeat

        table = Heartbeat.__table__
        with self.engine.connect() as conn:  # type: ignore[attr-defined]
            seen = conn.execute(select(table.c.started_at).where(table.c.kind == "beat")).scalar()
        return seen.timestamp() if seen is not None else None

    def add_job(self) -> float | None:
        """Add `bench-reload` the scheduler's way; when it was done, or None for stock."""
        if self.kind == "ours":
            schedule = self.workdir / "schedules.yaml"
            extra = (FIRST, ADDED) if self.frequent else (ADDED,)
            temporary = self.workdir / ".schedules.yaml.new"
            temporary.write_text(schedule_text(self.jobs, extra))
            os.replace(temporary, schedule)
            return time.time()
        if self.kind == "redbeat":
            from datetime import timedelta

            from celery import Celery
            from celery.schedules import schedule as every
            from redbeat import RedBeatSchedulerEntry

            app = Celery("bench-idle-client", broker=self.db.url)
            app.conf.redbeat_redis_url = self.db.url
            app.conf.redbeat_key_prefix = "bench-redbeat:"  # bench/redbeat_app.py's
            entry = RedBeatSchedulerEntry(ADDED, ADDED, every(timedelta(seconds=1)), app=app)
            at = time.time()
            entry.save()
            return at
        return None


def run_beat(beat: Beat, args: argparse.Namespace, result: Result) -> None:
    """Start one beat, measure what its mode measures, stop it."""
    label = f"{beat.kind}, {beat.jobs} jobs, {'start-up' if beat.frequent else 'idle'}"
    procs = Processes(beat.workdir)
    with ExitStack() as local:
        local.callback(procs.stop_all)
        argv, env = beat.command()
        if beat.kind == "ours" and beat.frequent:
            result.notes.append(f"loader alone: {measure_loader(beat.workdir, env)}")
        beat.db.reset()
        reader = Reader(beat.db)
        reader.start()
        local.callback(reader.stop)
        spawned = time.time()
        proc = procs.start(argv, env, "beat")
        log = beat.workdir / "beat.log"
        deadline = spawned + args.ready_timeout
        ready = None
        while ready is None and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
            ready = beat.ready_at()
        if ready is None:
            result.notes.append(
                f"{label}: " + ("exited" if proc.poll() is not None else "not ready")
            )
            print(f"  {label}, beat.log ends:\n{log_tail(log)}", file=sys.stderr)
            return
        starting = log_time(log, "beat: Starting...")
        if beat.frequent:
            first = reader.wait(FIRST, spawned, ready + 60, proc)
            result.ready_s = ready - spawned
            result.startup_s = first - spawned if first is not None else None
            if starting is not None and first is not None:
                result.notes.append(
                    f"start-up phases: imports and app {starting - spawned:.1f} s, "
                    f"scheduler set up {ready - starting:.1f} s, "
                    f"first message {first - ready:.1f} s after ready"
                )
            time.sleep(1)
            result.reload_busy_s = measure_add(beat, reader, proc, args, result, "busy")
        else:
            quiet = wait_quiet(proc.pid, deadline)
            result.notes.append(f"idle: quiet {quiet - ready:.1f} s after ready")
            time.sleep(args.settle)
            before, began = cpu_seconds(proc.pid), time.monotonic()
            time.sleep(args.window)
            used, elapsed = cpu_seconds(proc.pid) - before, time.monotonic() - began
            result.cpu_per_min = used / elapsed * 60
            result.rss_mb, result.peak_mb = memory_mb(proc.pid)
            sent = sum(1 for t, _ in list(reader.records) if t >= spawned)
            if sent:
                result.notes.append(f"idle: {sent} messages sent, expected none")
            result.reload_s = measure_add(beat, reader, proc, args, result, "idle")
        if proc.poll() is not None:
            result.notes.append(f"{label}: beat exited with {proc.returncode}")
        procs.stop(proc)
        problems = log_problems(log)
        if problems:
            result.notes.append(f"{label}: problems in beat log")
            print(f"  {label}:\n{problems}", file=sys.stderr)
        if reader.outages:
            result.notes.append(f"{label}: Redis unreachable {reader.outages} times meanwhile")
        if not beat.db.still_ours():
            result.notes.append("Redis DB was flushed by someone else")


def measure_add(
    beat: Beat,
    reader: Reader,
    proc: subprocess.Popen[bytes],
    args: argparse.Namespace,
    result: Result,
    mode: str,
) -> float | None:
    """Seconds from adding `bench-reload` to its first message; None if not seen or stock."""
    added = beat.add_job()
    if added is None:
        return None
    got = reader.wait(ADDED, added, added + args.reload_timeout, proc)
    log = beat.workdir / "beat.log"
    parsed = log_time(log, "reloaded:", added) if beat.kind == "ours" else None
    if got is not None and beat.frequent:
        # Whether the 1 s job kept ticking while the scheduler took the new job in.
        ticks = [t for t, name in list(reader.records) if name == FIRST and t >= added - 2]
        ticks = [t for t in ticks if t <= got + 2]
        gap = max((b - a for a, b in itertools.pairwise(ticks)), default=None)
        if gap is not None:
            result.notes.append(
                f"reload ({mode}): longest gap between bench-first messages {gap:.1f} s"
            )
    if got is None:
        result.notes.append(f"reload ({mode}): no message within {args.reload_timeout:.0f} s")
    elif parsed is not None:
        result.notes.append(
            f"reload ({mode}): file reloaded {parsed - added:.1f} s after the rename, "
            f"first message {got - parsed:.1f} s later"
        )
    return got - added if got is not None else None


def loader_phases(path: Path) -> str:
    """Our loader's phases on one file, timed in this process (run in a fresh one)."""
    from datetime import UTC
    from zoneinfo import ZoneInfo

    started = time.perf_counter()
    from scheduler.celery_app import app, registered_tasks
    from scheduler.planner import TickMemo, next_due
    from scheduler.schedule_file import load_schedule
    from scheduler.yamlsafe import read_document

    known = registered_tasks(app)
    times = [time.perf_counter()]
    gc.disable()  # as load_schedule does, or this phase would time the collector
    read_document(path, MAX_SCHEDULE_BYTES)
    gc.enable()
    times.append(time.perf_counter())
    schedule = load_schedule(path, known, ZoneInfo("UTC"), MAX_SCHEDULE_BYTES)
    times.append(time.perf_counter())
    now = datetime.now(UTC)
    memo: TickMemo = {}  # as the beat's start-up does
    for job in schedule.jobs.values():
        next_due(job, now, memo)
    times.append(time.perf_counter())
    return (
        f"imports and app (which reads the file's timezone) {times[0] - started:.1f} s, "
        f"YAML read and composed {times[1] - times[0]:.1f} s, "
        f"load_schedule (read, compose, validate) {times[2] - times[1]:.1f} s, "
        f"next_due of {len(schedule.jobs)} jobs {times[3] - times[2]:.1f} s"
    )


def measure_loader(workdir: Path, env: dict[str, str]) -> str:
    """loader_phases in a fresh process with the beat's environment."""
    done = subprocess.run(
        [sys.executable, __file__, "--loader-phases", str(workdir / "schedules.yaml")],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        return f"failed: {done.stderr.strip().splitlines()[-1:]}"
    return done.stdout.strip()


def wait_quiet(pid: int, deadline: float) -> float:
    """When the process first spends under QUIET_CORE of a core over one second."""
    while time.time() < deadline:
        before = cpu_seconds(pid)
        time.sleep(1)
        if cpu_seconds(pid) - before < QUIET_CORE:
            return time.time()
    return time.time()


# -- output ------------------------------------------------------------------------------------


def table(results: list[Result], args: argparse.Namespace) -> str:
    def num(value: float | None, digits: int = 1, missing: str = "-") -> str:
        return missing if value is None else f"{value:.{digits}f}"

    rows = [
        (
            "scheduler",
            "ready s",
            "start-up s",
            "CPU s/min idle",
            "% core",
            "RSS MB",
            "peak RSS MB",
            "reload s",
            "reload s, 1 s job on",
        )
    ]
    for r in results:
        stock = r.scheduler == "stock"
        late = f">{args.reload_timeout:.0f}"
        rows.append(
            (
                r.scheduler,
                num(r.ready_s),
                num(r.startup_s),
                num(r.cpu_per_min, 2),
                num(None if r.cpu_per_min is None else r.cpu_per_min / 60 * 100, 2),
                num(r.rss_mb, 0),
                num(r.peak_mb, 0),
                "n/a: restart" if stock else num(r.reload_s, 1, late),
                "n/a: restart" if stock else num(r.reload_busy_s, 1, late),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = zip(row, widths, strict=True)
        lines.append(
            "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(cells))
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10,000 jobs, 20 s windows")
    parser.add_argument("--jobs", type=int, nargs="+", help="job counts (default 10000 100000)")
    parser.add_argument(
        "--schedulers",
        nargs="+",
        choices=("ours", "stock", "redbeat"),
        default=["ours", "stock", "redbeat"],
    )
    parser.add_argument("--window", type=float, help="idle CPU window, s (60; --quick 20)")
    parser.add_argument("--settle", type=float, help="s after going quiet (5; --quick 3)")
    parser.add_argument("--reload-timeout", type=float, help="s to wait (60; --quick 20)")
    parser.add_argument("--ready-timeout", type=float, default=900.0, help="s (900)")
    parser.add_argument("--redis-db", type=int, help="Redis DB number (default: 0 if empty)")
    parser.add_argument("--keep-logs", type=Path, help="copy the beat logs into this directory")
    parser.add_argument("--loader-phases", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loader_phases:
        print(loader_phases(args.loader_phases))
        return
    args.jobs = args.jobs or ([10_000] if args.quick else [10_000, 100_000])
    args.window = args.window or (20.0 if args.quick else 60.0)
    args.settle = args.settle if args.settle is not None else (3.0 if args.quick else 5.0)
    args.reload_timeout = args.reload_timeout or (20.0 if args.quick else 60.0)
    exit_on_sigterm()

    print(header("beat idle cost, start-up and reload with jobs that are not due, no worker"))
    print(
        f"jobs {', '.join(map(str, args.jobs))}; idle window {args.window:.0f} s after quiet "
        f"+ {args.settle:.0f} s; reload wait up to {args.reload_timeout:.0f} s",
        flush=True,
    )
    with ExitStack() as stack:
        db = stack.enter_context(private_redis_db("idle", args.redis_db))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-idle-")))
        print(f"Redis DB {db.number}", flush=True)
        for jobs in args.jobs:
            results = []
            for kind in args.schedulers:
                result = Result(kind, jobs)
                for frequent in (True, False):
                    workdir = tmp / f"{kind}-{jobs}-{'startup' if frequent else 'idle'}"
                    workdir.mkdir()
                    try:
                        with ExitStack() as run:
                            run_beat(Beat(kind, jobs, db, workdir, run, frequent), args, result)
                    except Exception as exc:  # one failed run must not lose the others' figures
                        result.notes.append(f"{workdir.name} failed: {exc!r}")
                    if args.keep_logs:
                        args.keep_logs.mkdir(parents=True, exist_ok=True)
                        shutil.copy(workdir / "beat.log", args.keep_logs / f"{workdir.name}.log")
                print(
                    f"  {kind}, {jobs} jobs: start-up {result.startup_s} s, "
                    f"idle {result.cpu_per_min} CPU s/min",
                    file=sys.stderr,
                    flush=True,
                )
                results.append(result)
            notes = [f"  {r.scheduler}: {note}" for r in results for note in r.notes]
            print(f"\n{jobs:,} jobs not due\n{table(results, args)}", flush=True)
            print("\n".join(notes), flush=True)
    print(
        "\nreload: ours rewrites the schedule file (temp + rename), RedBeat saves a "
        "RedBeatSchedulerEntry to Redis, stock beat must restart; `reload s` with only the "
        "idle jobs, `1 s job on` while bench-first ticks every second; with nothing due, "
        "RedBeat and stock beat sleep up to beat_max_loop_interval (300 s) between ticks, "
        "and RedBeat reads new entries only when it wakes"
    )
    print(f"{load_line()} at the end")


if __name__ == "__main__":
    main()
