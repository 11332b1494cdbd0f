"""Celery signal handlers that write every run to the history (SPEC §6).

They run in whichever process fires the signal: the publisher (`.delay()` from any Python
code, recorded as trigger `api`), the worker child that executes the task, and the worker
parent (hard time limits). Each process opens its own engine, after any fork.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from celery import Task, signals
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

from scheduler.history.buffer import WriteBuffer
from scheduler.history.statuses import RunStatus, Trigger, utcnow
from scheduler.notify import NOTIFY_HEADER, Notifier, wanted

if TYPE_CHECKING:
    from scheduler.history.store import HistoryStore

log = logging.getLogger(__name__)

JOB_HEADER = "scheduler_job"
TRIGGER_HEADER = "scheduler_trigger"
RECORDED_HEADER = "scheduler_recorded"  # on messages whose run a publisher recorded (`api`)
HEARTBEAT_EVERY = 10.0
# Notify specs of runs this process has seen, by run id. The worker parent sees every run
# it receives but only hears of the ones that end there (hard time limits), so this is an
# LRU, not a map that is emptied.
_REMEMBERED_RUNS = 10_000
# Outcomes after which nothing reads the row to decide anything: written in the background.
DEFERRABLE = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED})


class Recorder:
    """Holds one HistoryStore per process and turns Celery signals into history rows."""

    def __init__(self, database_url: str, is_job_task: Callable[[str], bool]) -> None:
        self.database_url = database_url
        self.is_job_task = is_job_task
        self._store: HistoryStore | None = None
        self._pid = 0
        self._stop = threading.Event()
        self._notify_specs: OrderedDict[str, dict[str, Any]] = OrderedDict()
        # When each run this process is executing started, so that finishing it is a single
        # UPDATE; runs that end elsewhere (hard time limit, in the parent) read the row.
        self._started: dict[str, Any] = {}
        self._buffer: WriteBuffer | None = None
        self._buffer_pid = 0
        self.process_id: str | None = None  # "celery@host:pid" of the worker main process
        self.notifier = Notifier()

    @property
    def store(self) -> HistoryStore:
        if self._store is None or self._pid != os.getpid():
            # Imported here: `scheduler next` imports this module and needs no database.
            from scheduler.history.db import make_engine
            from scheduler.history.store import HistoryStore

            # A forked worker child must not share its parent's connections.
            self._store = HistoryStore(
                make_engine(self.database_url, per_statement=True), hold_start_connection=True
            )
            self._pid = os.getpid()
        return self._store

    @property
    def buffer(self) -> WriteBuffer:
        if self._buffer is None or self._buffer_pid != os.getpid():
            # One per process: a lock or queue copied by fork is not this process's.
            self._buffer, self._buffer_pid = WriteBuffer(), os.getpid()
        return self._buffer

    def connect(self) -> None:
        signals.before_task_publish.connect(self.on_publish, weak=False)
        signals.task_received.connect(self.on_received, weak=False)
        signals.task_prerun.connect(self.on_prerun, weak=False)
        signals.task_success.connect(self.on_success, weak=False)
        signals.task_postrun.connect(self.on_postrun, weak=False)
        signals.task_failure.connect(self.on_failure, weak=False)
        signals.task_retry.connect(self.on_retry, weak=False)
        signals.task_revoked.connect(self.on_revoked, weak=False)
        signals.worker_init.connect(self.on_worker_init, weak=False)
        signals.worker_ready.connect(self.on_worker_ready, weak=False)
        signals.worker_shutdown.connect(self.on_worker_shutdown, weak=False)
        signals.worker_process_shutdown.connect(self.on_process_shutdown, weak=False)

    def on_publish(
        self,
        sender: str | None = None,
        body: Any = None,
        headers: dict[str, Any] | None = None,
        routing_key: str | None = None,
        **_: Any,
    ) -> None:
        headers = headers or {}
        task_name = headers.get("task") or sender or ""
        # Beat and `scheduler trigger` record their runs before publishing; a retry is the
        # same run published again.
        if headers.get(TRIGGER_HEADER) or headers.get("retries") or not self.is_job_task(task_name):
            return
        args, kwargs = (
            (body[0], body[1]) if isinstance(body, list | tuple) and len(body) >= 2 else ((), {})
        )
        from scheduler.history.store import NewRun

        headers[RECORDED_HEADER] = 1  # the signal's dict is the message's: the worker sees it
        now = utcnow()
        self.buffer.write(
            lambda: self.store.record_published(
                NewRun(
                    id=headers["id"],
                    job_name=task_name,
                    task_name=task_name,
                    trigger=Trigger.API,
                    status=RunStatus.QUEUED,
                    queue=routing_key,
                    args=args,
                    kwargs=kwargs,
                    enqueued_at=now,
                ),
                now,
            ),
            None,
        )

    def on_received(self, request: Any = None, **_: Any) -> None:
        headers = getattr(request, "request_dict", None) or {}
        if request is not None and headers.get(NOTIFY_HEADER):
            self._remember(
                request.id, headers.get(JOB_HEADER) or request.name, headers[NOTIFY_HEADER]
            )

    def _remember(self, run_id: str, job_name: str, spec: dict[str, Any] | None) -> None:
        if not spec:
            return
        self._notify_specs[run_id] = {"job": job_name, **spec}
        self._notify_specs.move_to_end(run_id)
        while len(self._notify_specs) > _REMEMBERED_RUNS:
            self._notify_specs.popitem(last=False)

    def _finish(self, run_id: str, task_name: str, status: RunStatus, **fields: Any) -> None:
        """Record the outcome, then notify the job's webhook if it asks for this status."""
        now = utcnow()
        started_at = self._started.get(run_id)
        if status in DEFERRABLE and started_at is not None:
            fields.update(run_id=run_id, status=status, at=now, started_at=started_at)
            self.buffer.defer_many(fields, self.store.record_finished_many)
        else:
            # A retry's next delivery must find the run `retrying`, or it would take it for
            # a duplicate; an outcome recorded by the worker parent has no next task.
            store = self.store
            self.buffer.write(
                lambda: store.record_finished(run_id, status, now, started_at=started_at, **fields),
                None,
            )
        spec = self._notify_specs.get(run_id)
        if status is not RunStatus.RETRYING:
            self._notify_specs.pop(run_id, None)
        if spec and wanted(spec, status.value):
            self.notifier.send(
                spec["webhook"],
                {
                    "run_id": run_id,
                    "job": spec["job"],
                    "task": task_name,
                    "status": status.value,
                    "at": now.isoformat(),
                    "error_type": fields.get("error_type"),
                    "error_message": fields.get("error_message"),
                },
            )

    def on_prerun(
        self,
        task_id: str | None = None,
        task: Task | None = None,
        args: Any = (),
        kwargs: Any = None,
        **_: Any,
    ) -> None:
        if task is None or task_id is None or not self.is_job_task(task.name):
            return
        request = task.request
        job_name = request.get(JOB_HEADER) or task.name
        spec = request.get(NOTIFY_HEADER)
        if spec:
            self._remember(task_id, job_name, spec)
        now = utcnow()
        hard_limit = (request.timelimit or (None, None))[0] or task.time_limit
        delivery = request.delivery_info or {}
        store = self.store
        started = self.buffer.write(
            lambda: store.record_started(
                task_id,
                job_name=job_name,
                task_name=task.name,
                worker=request.hostname,
                worker_process=self.process_id or f"{request.hostname}:{os.getpid()}",
                redelivered=bool(delivery.get("redelivered")),
                known=bool(request.get(TRIGGER_HEADER) or request.get(RECORDED_HEADER)),
                at=now,
                args=args or (),
                kwargs=kwargs or {},
                queue=delivery.get("routing_key"),
                deadline_at=now + timedelta(seconds=float(hard_limit)) if hard_limit else None,
            ),
            True,
        )
        if started:
            self._started[task_id] = now
        else:
            # Read by JobTask.__call__, which then ends the delivery without running the job.
            request.scheduler_duplicate = True

    def on_postrun(self, task_id: str | None = None, **_: Any) -> None:
        # After success/failure/retry handlers have used it.
        self._started.pop(task_id or "", None)

    def on_success(self, sender: Task | None = None, result: Any = None, **_: Any) -> None:
        if sender is None or not self.is_job_task(sender.name) or not sender.request.id:
            return
        self._finish(sender.request.id, sender.name, RunStatus.SUCCEEDED, result=result)

    def on_failure(
        self,
        sender: Task | None = None,
        task_id: str | None = None,
        exception: BaseException | None = None,
        einfo: Any = None,
        **_: Any,
    ) -> None:
        if sender is None or task_id is None or not self.is_job_task(sender.name):
            return
        timed_out = isinstance(exception, TimeLimitExceeded | SoftTimeLimitExceeded)
        self._finish(
            task_id,
            sender.name,
            RunStatus.TIMED_OUT if timed_out else RunStatus.FAILED,
            error_type=type(exception).__name__ if exception else None,
            error_message=str(exception) if exception else None,
            traceback=str(einfo.traceback) if einfo is not None else None,
        )

    def on_retry(
        self,
        sender: Task | None = None,
        request: Any = None,
        reason: Any = None,
        einfo: Any = None,
        **_: Any,
    ) -> None:
        if sender is None or request is None or not self.is_job_task(sender.name):
            return
        cause = getattr(reason, "exc", None) or reason
        self._finish(
            request.id,
            sender.name,
            RunStatus.RETRYING,
            error_type=type(cause).__name__,
            error_message=str(cause),
            traceback=str(einfo.traceback) if einfo is not None else None,
        )

    def on_revoked(
        self, sender: Task | None = None, request: Any = None, expired: bool = False, **_: Any
    ) -> None:
        if request is None or not getattr(request, "id", None):
            return
        if sender is not None and not self.is_job_task(sender.name):
            return
        message = "message expired before a worker started it" if expired else "revoked"
        name = sender.name if sender is not None else getattr(request, "name", "") or ""
        self._finish(request.id, name, RunStatus.REVOKED, error_message=message)

    # -- worker liveness, for `scheduler status` ---------------------------------------

    def on_worker_init(self, sender: Any = None, **_: Any) -> None:
        """Name this worker process; refuse to start on a history database with an old schema."""
        from sqlalchemy.exc import SQLAlchemyError

        from scheduler.history.revision import SchemaOutOfDate, require_current

        hostname = getattr(sender, "hostname", None) or socket.gethostname()
        # Set before the pool forks, so the children record runs under their parent's name:
        # the parent is the one that writes heartbeats.
        self.process_id = f"{hostname}:{os.getpid()}"
        try:
            require_current(self.store.engine)
            # Alive from the start: a run it takes before the heartbeat thread's first beat
            # must not look like one whose worker is gone.
            self.store.heartbeat(self.process_id, "worker", hostname, os.getpid(), utcnow())
        except SchemaOutOfDate as exc:
            log.critical("worker refuses to start: %s", exc)
            print(exc, file=sys.stderr)
            # SystemExit passes through Celery's signal dispatch, which logs other errors.
            raise SystemExit(1) from None
        except SQLAlchemyError as exc:
            # A database that is down now may be back soon; runs are recorded once it is.
            log.error("history database unreachable at worker start: %s", exc)

    def on_worker_ready(self, sender: Any = None, **_: Any) -> None:
        hostname = getattr(sender, "hostname", None) or socket.gethostname()
        self._stop.clear()
        thread = threading.Thread(
            target=self._beat_heart, args=(hostname,), name="history-heartbeat", daemon=True
        )
        thread.start()

    def _beat_heart(self, hostname: str) -> None:
        while not self._stop.is_set():
            try:
                self.store.heartbeat(
                    self.process_id or f"{hostname}:{os.getpid()}",
                    "worker",
                    hostname,
                    os.getpid(),
                    utcnow(),
                    detail=_active_run_ids(),
                )
            except Exception:
                log.exception("could not record the worker heartbeat in the history database")
            self._stop.wait(HEARTBEAT_EVERY)

    def on_process_shutdown(self, **_: Any) -> None:
        """A pool child is exiting: give its delayed history writes a last chance."""
        if self._buffer is not None and self._buffer_pid == os.getpid():
            self._buffer.flush(timeout=10)

    def on_worker_shutdown(self, sender: Any = None, **_: Any) -> None:
        self._stop.set()
        self.buffer.flush(timeout=10)
        self.notifier.close()
        hostname = getattr(sender, "hostname", None) or socket.gethostname()
        try:
            self.store.forget_heartbeat(self.process_id or f"{hostname}:{os.getpid()}")
        except Exception:
            log.exception("could not remove the worker heartbeat from the history database")


def _active_run_ids() -> str:
    """Ids of the tasks this worker is executing, for the reaper (comma-separated)."""
    from celery.worker import state

    return ",".join(sorted(request.id for request in list(state.active_requests)))
