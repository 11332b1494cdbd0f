"""Real beat and worker processes against real brokers and databases, for end-to-end tests.

Each test gets its own broker namespace (a leased Redis DB number, a RabbitMQ
vhost, or an SQLite file) and its own database, and kills only the processes it started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.services import AMQP_URL, database, redis_db, require

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def broker(kind: str, tmp_path: Path) -> Iterator[str]:
    """A private broker namespace of `kind` (redis, amqp, sqlite); yields its URL."""
    if kind == "sqlite":
        yield f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
        return
    if kind == "redis":
        with redis_db() as url:
            yield url
        return
    require("127.0.0.1", 5672, "RabbitMQ")
    vhost = f"sched-{uuid.uuid4().hex[:10]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"{AMQP_URL}/{vhost}"
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True)


@dataclass
class System:
    """Environment and processes of one end-to-end scenario."""

    workdir: Path
    env: dict[str, str]
    procs: list[tuple[subprocess.Popen[bytes], Path]] = field(default_factory=list)
    _store: Any = None  # the HistoryStore that `history` reads through, opened on first use

    @property
    def schedule_file(self) -> Path:
        return Path(self.env["SCHEDULER_SCHEDULE_FILE"])

    def write_schedule(self, text: str) -> None:
        self.schedule_file.write_text(text)

    def start(self, *args: str, name: str) -> subprocess.Popen[bytes]:
        """Start a process in its own session; its output goes to a log file."""
        log = self.workdir / f"{name}.log"
        out = log.open("wb")
        proc = subprocess.Popen(
            list(args),
            cwd=self.workdir,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append((proc, log))
        return proc

    def celery(self, *args: str, name: str) -> subprocess.Popen[bytes]:
        return self.start(sys.executable, "-m", "celery", "-A", "scheduler", *args, name=name)

    def worker(
        self, name: str = "worker", concurrency: int = 2, queues: str = "celery"
    ) -> subprocess.Popen[bytes]:
        return self.celery(
            "worker",
            *("-l", "info", "-c", str(concurrency), "-Q", queues),
            *("-n", f"{name}-{uuid.uuid4().hex[:6]}@%h", "--without-mingle", "--without-gossip"),
            name=name,
        )

    def beat(self, name: str = "beat") -> subprocess.Popen[bytes]:
        return self.celery(
            "beat", "-l", "info", "-s", str(self.workdir / f"{name}-state"), name=name
        )

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scheduler", *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def python(self, code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def cli_history(self, *args: str) -> list[dict[str, Any]]:
        """`scheduler history --format json` with these options, in its own process."""
        result = self.cli("history", "--format", "json", "--limit", "100000", *args)
        assert result.returncode == 0, result.stderr
        rows: list[dict[str, Any]] = json.loads(result.stdout)
        return rows

    def history(self, job: str | None = None, trigger: str | None = None) -> list[dict[str, Any]]:
        """The rows `cli_history` prints, read in this process: tests poll the history
        every half second, and a `scheduler` process costs over a second of CPU to start."""
        from scheduler.cli_ops import HISTORY_FIELDS, _jsonable
        from scheduler.history.db import make_engine
        from scheduler.history.models import Trigger
        from scheduler.history.store import HistoryStore, RunFilter

        if self._store is None:
            default = f"sqlite:///{self.workdir / 'var' / 'history.sqlite'}"  # as the CLI's
            url = self.env.get("SCHEDULER_DATABASE_URL") or default
            self._store = HistoryStore(make_engine(url))
        flt = RunFilter(job_name=job, trigger=Trigger(trigger) if trigger else None, limit=100_000)
        rows = [
            {name: _jsonable(getattr(run, name)) for name in HISTORY_FIELDS}
            for run in self._store.runs(flt)
        ]
        result: list[dict[str, Any]] = json.loads(json.dumps(rows))  # as the CLI prints them
        return result

    def logs(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')}" for _, log in self.procs
        )

    def stop(
        self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 20
    ) -> int:
        """Signal one of our processes (its whole session) and wait for it."""
        if proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        return proc.returncode

    def stop_together(self, procs: list[subprocess.Popen[bytes]], timeout: float = 20) -> None:
        """SIGTERM to each of these processes at once, then wait for each: their warm
        shutdowns (a beat sending what it claimed ahead) overlap instead of adding up."""
        for proc in procs:
            if proc.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                # Not signalled twice: a second SIGTERM would cut a beat's drain short.
                self.stop(proc, signal.SIGKILL)

    def stop_all(self) -> None:
        self.stop_together([proc for proc, _ in self.procs])
        if self._store is not None:
            self._store.engine.dispose()


def wait_for(
    check: Callable[[], Any], timeout: float, what: str, system: System | None = None
) -> Any:
    """Poll `check` until it returns something truthy; fail with the logs after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    logs = system.logs()[-6000:] if system else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs}")


@contextmanager
def system(broker_kind: str, database_kind: str, tmp_path: Path) -> Iterator[System]:
    """A migrated database and a private broker; stops every process it started on exit."""
    with ExitStack() as stack:
        broker_url = stack.enter_context(broker(broker_kind, tmp_path))
        database_url = stack.enter_context(database(database_kind, tmp_path))
        env = {
            **os.environ,
            "SCHEDULER_BROKER_URL": broker_url,
            "SCHEDULER_DATABASE_URL": database_url,
            "SCHEDULER_SCHEDULE_FILE": str(tmp_path / "schedules.yaml"),
            "PYTHONPATH": str(REPO),
        }
        env.pop("SCHEDULER_RESULT_BACKEND", None)
        env.pop("SCHEDULER_TIMEZONE", None)
        sys_ = System(tmp_path, env)
        sys_.write_schedule("jobs: {}\n")
        upgraded = sys_.cli("db", "upgrade")
        assert upgraded.returncode == 0, upgraded.stderr
        try:
            yield sys_
        finally:
            sys_.stop_all()
