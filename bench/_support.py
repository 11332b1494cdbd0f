"""Shared plumbing of the process benchmarks: a private Redis DB, a fresh PostgreSQL
database, processes started in their own session (and stopped by process group), log scans.

Not a benchmark itself. Everything created here is removed on exit: the Redis DB is flushed,
the database dropped, and every process started through `Processes` is stopped.
"""

from __future__ import annotations

import math
import os
import platform
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

REPO = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("SCHEDULER_TEST_REDIS_URL", "redis://127.0.0.1:6379")
MARKER = "bench:owner"


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so that `finally` blocks clean up as on Ctrl-C."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def header(title: str) -> str:
    """Commit, dirty tracked files, Python/Celery versions, CPUs and load, for the output."""
    import celery

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return "?"

    commit = git("rev-parse", "--short", "HEAD").strip() or "?"
    dirty = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        title,
        f"commit {commit}"
        + (f" + uncommitted changes in {', '.join(dirty)}" if dirty else " (clean)"),
        f"python {platform.python_version()}, celery {celery.__version__}, "
        f"{os.cpu_count()} CPUs, load average {load}",
    ]
    return "\n".join(lines)


def load_line() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


# -- Redis ---------------------------------------------------------------------------------


@dataclass
class RedisDB:
    """A Redis DB number that was empty when we took it; flushed by `reset` and on exit."""

    url: str
    number: int
    owner: str

    def client(self) -> redis.Redis:
        import redis

        return redis.Redis.from_url(self.url)

    def reset(self) -> None:
        with self.client() as r:
            r.flushdb()
            r.set(MARKER, self.owner)

    def still_ours(self) -> bool:
        """False if someone else flushed or took over the DB while we used it."""
        with self.client() as r:
            return r.get(MARKER) == self.owner.encode()


@contextmanager
def private_redis_db(name: str, number: int | None = None) -> Iterator[RedisDB]:
    """An empty Redis DB, marked as ours; `number`, else 0, else the first empty of 15..1.

    DB 0 first: the end-to-end test harness flushes a random DB among 1-15 when a test starts
    and ends, so a benchmark there is wiped whenever tests run at the same time.
    """
    import redis

    owner = f"{name}:{os.getpid()}:{time.time():.0f}"
    chosen = None
    candidates = [number] if number is not None else [0, *range(15, 0, -1)]
    for candidate in candidates:
        with redis.Redis.from_url(f"{REDIS_URL}/{candidate}") as r:
            # SET NX on the marker of an empty DB: two benchmarks cannot take the same one.
            if r.dbsize() == 0 and r.set(MARKER, owner, nx=True):
                chosen = candidate
                break
    if chosen is None:
        raise SystemExit(f"no empty Redis DB to use at {REDIS_URL}")
    if chosen != 0:
        print(
            f"warning: Redis DB 0 is in use, using DB {chosen}: end-to-end tests running at "
            "the same time may flush it",
            file=sys.stderr,
        )
    db = RedisDB(f"{REDIS_URL}/{chosen}", chosen, owner)
    try:
        yield db
    finally:
        with db.client() as r:
            if r.get(MARKER) == owner.encode():
                r.flushdb()
            else:
                print(
                    f"warning: Redis DB {chosen} was flushed or taken by someone else while "
                    "the benchmark ran; not flushing it again",
                    file=sys.stderr,
                )


# -- PostgreSQL ----------------------------------------------------------------------------


@contextmanager
def postgres_database(tmp: Path) -> Iterator[str]:
    """A fresh, empty PostgreSQL database (tests/services.py `database`), dropped on exit."""
    from tests.services import database

    with database("postgresql", tmp) as url:
        yield url


def migrate(env: Mapping[str, str], cwd: Path) -> None:
    """`python -m scheduler db upgrade` against the environment's SCHEDULER_DATABASE_URL."""
    done = subprocess.run(
        [sys.executable, "-m", "scheduler", "db", "upgrade"],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise SystemExit(f"scheduler db upgrade failed:\n{done.stdout}{done.stderr}")


def base_env(**scheduler_vars: str) -> dict[str, str]:
    """os.environ without SCHEDULER_*/BENCH_* settings, plus the given ones and PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCHEDULER_", "BENCH_"))}
    env["PYTHONPATH"] = str(REPO)
    env.update(scheduler_vars)
    return env


# -- processes -----------------------------------------------------------------------------


@dataclass
class Processes:
    """Processes we started, each in its own session; only those are ever signalled."""

    workdir: Path
    started: list[tuple[subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def start(
        self, args: list[str], env: Mapping[str, str], log_name: str
    ) -> subprocess.Popen[bytes]:
        log = self.workdir / f"{log_name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                args,
                cwd=self.workdir,
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append((proc, log))
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 20) -> int:
        """SIGTERM our process group, SIGKILL it after `timeout` seconds."""
        if proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        # Children (prefork pool) share the group: make sure none outlives its parent.
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.returncode

    def stop_all(self) -> None:
        for proc, _ in self.started:
            self.stop(proc)


_PROBLEM = re.compile(r"\b(ERROR|CRITICAL)\b|Traceback|\bWARNING\b")
_SEVERE = ("CRITICAL", "ERROR", "Traceback")


def log_problems(log: Path, limit: int = 3, context: int = 4) -> str:
    """'' if the log is clean, else counts of WARNING/ERROR/CRITICAL/Traceback and samples.

    The samples are the first `limit` CRITICAL/ERROR/Traceback lines with the `context`
    lines after each, else the first WARNING lines.
    """
    if not log.exists():
        return ""
    lines = log.read_text(errors="replace").splitlines()
    counts: dict[str, int] = {}
    severe: list[int] = []
    warnings: list[int] = []
    for n, line in enumerate(lines):
        found = _PROBLEM.search(line)
        if not found:
            continue
        kind = found.group(0)
        counts[kind] = counts.get(kind, 0) + 1
        (severe if kind in _SEVERE else warnings).append(n)
    if not counts:
        return ""
    shown: list[int] = []
    for n in severe[:limit] if severe else warnings[:limit]:
        shown.extend(i for i in range(n, min(len(lines), n + 1 + context)) if i not in shown)
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    return f"  {log.name}: {summary}\n" + "\n".join("    " + lines[i][:300] for i in shown)


def log_tail(log: Path, lines: int = 15) -> str:
    if not log.exists():
        return ""
    return "\n".join(
        "    " + line for line in log.read_text(errors="replace").splitlines()[-lines:]
    )


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty list."""
    rank = math.ceil(q * len(sorted_values))
    return sorted_values[max(0, min(len(sorted_values), rank) - 1)]
