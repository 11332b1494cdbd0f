"""Throughput of a worker running the no-op job, with and without result backend and history.

    python bench/worker_throughput.py [--quick] [--tasks 2000] [--repeat 1]
        [--concurrency 2] [--loglevel info] [--timeout 300] [--only a,c]

Needs Redis at 127.0.0.1:6379 and PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth);
the addresses can be changed as for the tests (SCHEDULER_TEST_REDIS_URL,
SCHEDULER_TEST_POSTGRES_URL).

Three configurations, one after the other in the same run, each with a prefork worker
(`-c 2`) running `jobs.demo.noop` from a Redis broker:

  (a) `celery -A bench.plain_app worker`, no result backend, no history recording;
  (b) `celery -A bench.plain_app worker`, Celery's `db+postgresql+psycopg://` result backend,
      no history recording;
  (c) `celery -A scheduler worker`: history recording on, default result backend (the
      history itself, scheduler/history/backend.py: results are not written a second time).

--only runs some of them (e.g. `--only a,c`), still in that order within each repeat.

Method, per configuration: a fresh PostgreSQL database (migrated for (c)) and a flushed
private Redis DB; N messages are published with the worker stopped, by the plain app (no
recorder, so the publisher's own history write is not what is measured: in (c) the worker's
prerun handler creates the run rows); then the worker starts. The clock starts when the
queue first holds fewer than N messages and stops when the queue is empty and no message
is left unacknowledged (the app uses late acks, so the last message is acknowledged only
after its task, result and history writes are done). Worker start-up is not included.
Results are checked afterwards: `celery inspect stats` total, for (b) the result rows and
for (c) the `succeeded` runs.

--quick publishes 300 messages instead of 2000 (about 15 s in all). A default run takes about
a minute on a 2-CPU machine, --repeat times that; each configuration run is abandoned
after --timeout seconds (default 300, 120 with --quick).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
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
UNACKED = "unacked"  # kombu's Redis transport keeps delivered, unacknowledged messages here


@dataclass(frozen=True)
class Config:
    key: str
    label: str
    app: str  # the -A of the worker
    result_backend: str  # none, celery-db, default
    history: bool


CONFIGS = (
    Config("a", "(a) no result backend, no history", "bench.plain_app", "none", False),
    Config("b", "(b) Celery db+postgresql result backend", "bench.plain_app", "celery-db", False),
    Config("c", "(c) ours: history, results read from it", "scheduler", "default", True),
)


@dataclass
class Outcome:
    config: Config
    repeat: int
    tasks: int
    seconds: float | None
    note: str = ""
    cpu: float | None = None  # CPU seconds of the worker's processes while measured

    @property
    def cpu_ms(self) -> float | None:
        return self.cpu * 1000 / self.tasks if self.cpu is not None and self.tasks else None

    @property
    def rate(self) -> float | None:
        return self.tasks / self.seconds if self.seconds else None


def publish(env: dict[str, str], count: int, db: RedisDB) -> None:
    """Publish `count` no-op messages with the plain app (no recorder) of this configuration."""
    import jobs.demo  # registers the task with every app
    from bench.plain_app import build

    app = build(env)
    try:
        if str(app.conf.result_backend or "").startswith("db+"):
            # Celery's database backend creates its tables on first use; do it here, so that
            # neither the two pool children racing to create them nor the DDL is measured.
            app.backend.ResultSession().close()
        task = app.tasks[jobs.demo.noop.name]
        with app.producer_or_acquire() as producer:
            for _ in range(count):
                task.apply_async(producer=producer)
    finally:
        app.close()
    with db.client() as r:
        queued = r.llen(QUEUE)
    if queued != count:
        raise SystemExit(f"published {count} messages but the queue holds {queued}")


def group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of a process group."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ...
            total += int(fields[11]) + int(fields[12])
    return total / tick


def wait_drained(
    db: RedisDB, count: int, proc: subprocess.Popen[bytes], timeout: float
) -> tuple[float | None, int, str, float | None]:
    """(seconds from the first message taken to queue and unacked both empty, done, note,
    CPU seconds the worker's processes used meanwhile)."""
    started: float | None = None
    cpu_at_start = 0.0
    empty_since: float | None = None
    deadline = time.monotonic() + timeout
    with db.client() as r:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                queued = r.llen(QUEUE)
                return None, count - queued, f"worker exited with {proc.returncode}", None
            pipe = r.pipeline(transaction=False)
            pipe.llen(QUEUE)
            pipe.hlen(UNACKED)
            queued, unacked = pipe.execute()
            now = time.perf_counter()
            if started is None and queued < count:
                started = now
                cpu_at_start = group_cpu(proc.pid)
            if started is not None and queued == 0 and unacked == 0:
                # Seen twice in a row: a message between BRPOP and its unacked entry is in
                # neither place for a moment.
                if empty_since is not None:
                    return empty_since - started, count, "", group_cpu(proc.pid) - cpu_at_start
                empty_since = now
            else:
                empty_since = None
            time.sleep(0.002)
        queued, unacked = r.llen(QUEUE), r.hlen(UNACKED)
    return None, count - queued - unacked, f"timed out after {timeout:.0f}s", None


def verify(config: Config, env: dict[str, str], node: str, count: int, db_url: str) -> str:
    """'' if the worker's stats and the database agree that `count` tasks ran, else why not."""
    from sqlalchemy import text

    from bench.plain_app import build
    from scheduler.history.db import make_engine

    problems = []
    app = build(env)
    try:
        stats = app.control.inspect(destination=[node], timeout=5).stats() or {}
        total = (stats.get(node) or {}).get("total", {}).get("jobs.demo.noop")
        if total != count:
            problems.append(f"inspect stats total {total}")
    finally:
        app.close()
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            if config.result_backend == "celery-db":
                done = conn.execute(
                    text("SELECT count(*) FROM celery_taskmeta WHERE status = 'SUCCESS'")
                ).scalar()
                if done != count:
                    problems.append(f"{done} SUCCESS results")
            if config.history:
                # A run's outcome is written up to DEFER_FOR after its message is
                # acknowledged (scheduler/history/buffer.py): give the last ones a moment.
                deadline = time.monotonic() + 10
                while True:
                    done = conn.execute(
                        text("SELECT count(*) FROM runs WHERE status = 'succeeded'")
                    ).scalar()
                    if done == count or time.monotonic() > deadline:
                        break
                    time.sleep(0.2)
                if done != count:
                    problems.append(f"{done} succeeded runs")
    finally:
        engine.dispose()
    return "; ".join(problems)


def run_config(
    config: Config, repeat: int, args: argparse.Namespace, db: RedisDB, tmp: Path
) -> Outcome:
    from scheduler.history.db import sqlalchemy_url

    workdir = tmp / f"{config.key}{repeat}"
    workdir.mkdir()
    procs = Processes(workdir)
    try:
        with postgres_database(workdir) as db_url:
            env = base_env(
                SCHEDULER_BROKER_URL=db.url,
                SCHEDULER_DATABASE_URL=db_url,
                SCHEDULER_SCHEDULE_FILE=str(workdir / "schedules.yaml"),
            )
            (workdir / "schedules.yaml").write_text("jobs: {}\n")
            if config.result_backend == "none":
                env["BENCH_RESULT_BACKEND"] = "none"
            elif config.result_backend == "celery-db":
                env["BENCH_RESULT_BACKEND"] = "db+" + sqlalchemy_url(db_url)
            if config.history:
                migrate(env, workdir)
            db.reset()
            publish(env, args.tasks, db)
            node = f"bench-{config.key}-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
            proc = procs.start(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    config.app,
                    "worker",
                    "-P",
                    "prefork",
                    "-c",
                    str(args.concurrency),
                    "-l",
                    args.loglevel,
                    "-n",
                    node,
                    "--without-mingle",
                    "--without-gossip",
                ],
                env,
                "worker",
            )
            seconds, done, note, cpu = wait_drained(db, args.tasks, proc, args.timeout)
            if seconds is not None:
                note = verify(config, env, node, args.tasks, db_url)
            procs.stop_all()
            if not db.still_ours():
                note = (note + "; " if note else "") + "Redis DB was flushed by someone else"
            problems = log_problems(workdir / "worker.log")
            if seconds is None:
                problems += "\n  worker.log ends:\n" + log_tail(workdir / "worker.log")
            if problems:
                print(f"{config.label}, run {repeat}:\n{problems}", file=sys.stderr)
                note = (note + "; " if note else "") + "problems in worker log"
            return Outcome(config, repeat, done, seconds, note, cpu)
    finally:
        procs.stop_all()


def table(outcomes: list[Outcome]) -> str:
    rows = [
        (
            "configuration",
            "run",
            "tasks",
            "seconds",
            "tasks/s",
            "vs (a)",
            "worker CPU ms/task",
            "note",
        )
    ]
    baseline = {o.repeat: o.rate for o in outcomes if o.config.key == "a"}
    for o in outcomes:
        base = baseline.get(o.repeat)
        rows.append(
            (
                o.config.label,
                str(o.repeat),
                str(o.tasks),
                f"{o.seconds:.3f}" if o.seconds else "-",
                f"{o.rate:.0f}" if o.rate else "-",
                f"{o.rate / base:.2f}" if o.rate and base else "-",
                f"{o.cpu_ms:.2f}" if o.cpu_ms is not None else "-",
                o.note,
            )
        )
    return _format(rows)


def summary(outcomes: list[Outcome]) -> str:
    rows = [
        (
            "configuration",
            "runs",
            "median tasks/s",
            "best tasks/s",
            "vs (a) median",
            "median CPU ms/task",
        )
    ]
    medians = {}
    for config in CONFIGS:
        rates = [o.rate for o in outcomes if o.config is config and o.rate]
        medians[config.key] = statistics.median(rates) if rates else None
    for config in CONFIGS:
        ran = [o for o in outcomes if o.config is config]
        if not ran:
            continue  # left out with --only
        rates = [o.rate for o in ran if o.rate]
        cpus = [o.cpu_ms for o in ran if o.cpu_ms is not None]
        median, base = medians[config.key], medians["a"]
        rows.append(
            (
                config.label,
                str(len(rates)),
                f"{median:.0f}" if median else "-",
                f"{max(rates):.0f}" if rates else "-",
                f"{median / base:.2f}" if median and base else "-",
                f"{statistics.median(cpus):.2f}" if cpus else "-",
            )
        )
    return _format(rows)


def _format(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            cell.ljust(w) if i == 0 or i == len(row) - 1 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="300 tasks instead of 2000")
    parser.add_argument("--tasks", type=int, help="messages per configuration (default 2000)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each configuration")
    parser.add_argument("--concurrency", type=int, default=2, help="worker -c (prefork)")
    parser.add_argument("--loglevel", default="info", help="worker -l (default info)")
    parser.add_argument(
        "--timeout", type=float, help="seconds per configuration run (default 300, quick 120)"
    )
    parser.add_argument(
        "--only", help="configurations to run, comma-separated (default a,b,c)", default="a,b,c"
    )
    parser.add_argument("--redis-db", type=int, help="Redis DB number (default: 0 if empty)")
    args = parser.parse_args()
    args.tasks = args.tasks or (300 if args.quick else 2000)
    args.timeout = args.timeout or (120 if args.quick else 300)
    keys = {key.strip() for key in args.only.split(",") if key.strip()}
    unknown = keys - {config.key for config in CONFIGS}
    if unknown or not keys:
        parser.error(f"--only takes a comma-separated subset of a,b,c, not {args.only!r}")
    configs = [config for config in CONFIGS if config.key in keys]
    exit_on_sigterm()

    print(header("worker throughput: jobs.demo.noop, Redis broker, PostgreSQL database"))
    print(
        f"{args.tasks} tasks per run, worker -P prefork -c {args.concurrency} -l {args.loglevel}, "
        f"{args.repeat} run(s) per configuration",
        flush=True,
    )
    outcomes: list[Outcome] = []
    with ExitStack() as stack:
        db = stack.enter_context(private_redis_db("worker_throughput", args.redis_db))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-worker-")))
        print(f"Redis DB {db.number}", flush=True)
        for repeat in range(1, args.repeat + 1):
            for config in configs:
                outcome = run_config(config, repeat, args, db, tmp)
                print(
                    f"  {config.label}, run {repeat}: "
                    + (f"{outcome.rate:.0f} tasks/s" if outcome.rate else "no figure")
                    + (f" ({outcome.note})" if outcome.note else ""),
                    file=sys.stderr,
                    flush=True,
                )
                outcomes.append(outcome)
    print()
    print(table(outcomes))
    if args.repeat > 1:
        print()
        print(summary(outcomes))
    print(f"\n{load_line()} at the end")


if __name__ == "__main__":
    main()
