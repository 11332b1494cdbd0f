"""Beat: the celery.beat.Scheduler that reads schedules.yaml and dispatches each tick once.

Thin glue, and the one place that reads the clock: load (and live-reload) the file, ask the
planner what is due, claim each tick in the history database, send the claimed ones.

Why a tick runs exactly once, with any number of beats and crashes anywhere:
1. Claim, then publish, then mark sent. The claim is the INSERT of the tick's run row, whose
   primary key is derived from (job, tick instant); it commits before anything is
   published, so of two beats racing for a tick only the one whose INSERT succeeded
   publishes it. No tick is ever published by a beat that did not claim it.
2. A beat can die after the claim and before (or during) the publish. Then the row stays
   `queued` with no `enqueued_at`, and every beat re-sends such rows `unsent_after` (10 s)
   after they were due (`_recover_unsent`): nothing claimed is lost. The re-send may
   duplicate a message the dead beat did publish, or one a slow live beat is still about
   to mark.
3. Duplicates are therefore possible at the broker, never at the job: the message carries
   the run id, and the worker starts a run only through a conditional UPDATE of its row
   (`HistoryStore.record_started`). A copy that finds the run finished, or running on a
   live worker, is acknowledged without running; a broker redelivery (its first delivery
   ended unacknowledged: the worker died) takes the run over with attempts + 1.
4. A run whose worker died without a redelivery is ended `lost` by the reaper
   (`HistoryStore.reap`, run here), so no row stays `running` for ever.
5. A broker that lost its data (Redis restarted without persistence) took the messages of
   the runs sent but not started: when a beat notices (`Sender.lost_data`), it sends them
   again (`_resend_lost`). Without that they would wait `queued` until the reaper ended
   them `lost`, `queued_timeout` later.

Why ticks go out on time: ticks due within `prepare_ahead` (10 s; longer before a burst too
large for it: `scheduler/lead.py`) are planned, claimed and their messages prepared before
they are due (`_prepare_ahead`, `scheduler/sender.py`); at the due instant only the prepared
broker commands are sent, in one round trip per thousand. A job
with `overlap: forbid` that has a run in progress when its tick is prepared is decided at
the tick instead, so that a run ending just before its next tick does not make it skip.
"""

from __future__ import annotations

import heapq
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from celery.beat import Scheduler

from scheduler.config import Settings, mask_url
from scheduler.errors import ScheduleError
from scheduler.history.db import make_engine
from scheduler.history.models import RunStatus, Trigger
from scheduler.history.recording import JOB_HEADER, TRIGGER_HEADER
from scheduler.history.revision import SchemaOutOfDate, require_current
from scheduler.history.store import HistoryStore, NewRun, run_id_for
from scheduler.jobtask import RETRY_HEADER
from scheduler.lead import LeadPlanner
from scheduler.notify import NOTIFY_HEADER, Notifier
from scheduler.planner import ActionKind, TickMemo, due_at, next_due, plan
from scheduler.sender import Prepared, Sender
from scheduler.spec import JobSpec, Overlap, ScheduleFile
from scheduler.watcher import ScheduleWatcher

log = logging.getLogger(__name__)

RELOAD_EVERY = 1.0  # seconds between checks of the schedule file
HEARTBEAT_EVERY = timedelta(seconds=10)
RETRY_AFTER = timedelta(seconds=1)  # after a database or broker error for one job
PURGE_EVERY = timedelta(hours=1)
# The stats rollup follows the runs (HistoryStore.refresh_stats), in a thread of its own:
# a refresh can take seconds on a big history, and ticks must go out on time meanwhile.
STATS_EVERY = timedelta(minutes=5)
REAP_EVERY = timedelta(seconds=15)
RECOVER_EVERY = timedelta(seconds=5)  # at most; twice per Settings.unsent_after if shorter
# Settings.prepare_ahead: ticks due this soon are claimed and their messages built ahead, so
# that they go out at their instant: building a Celery message costs ~0.5 ms, 10,000 of
# them 5 s. A burst too large for it is taken in earlier (LeadPlanner).
PREPARE_CHUNK = 500  # jobs prepared between two looks at what has come due meanwhile
# Settings.unsent_after: a claimed run not recorded as sent this long after it was due is
# sent again by any beat: the beat that claimed it stopped before sending it. A duplicate
# message is harmless: the worker checks the run's row before running it.
MARK_CHUNK = 1000  # runs per UPDATE of their enqueued_at
_STATUS_OF = {
    ActionKind.SEND: RunStatus.QUEUED,
    ActionKind.MISSED: RunStatus.MISSED,
    ActionKind.SKIPPED: RunStatus.SKIPPED,
}


@dataclass(order=True, slots=True)
class _Due:
    due_at: datetime
    seq: int
    job: JobSpec = field(compare=False)
    tick_at: datetime = field(compare=False)


@dataclass(slots=True)
class _Unsent:
    job: JobSpec
    run: NewRun
    due_at: datetime
    prepared: Prepared | None = None


@dataclass(order=True, slots=True)
class _Ready:
    due_at: datetime
    seq: int
    item: _Unsent = field(compare=False)


class Beat(Scheduler):  # type: ignore[misc]
    """Set as `beat_scheduler`, so `celery -A scheduler beat` runs it."""

    def __init__(
        self,
        app: Any,
        *args: Any,
        clock: Callable[[], datetime] | None = None,
        settings: Settings | None = None,
        **kwargs: Any,
    ) -> None:
        self._clock = clock or (lambda: datetime.now(UTC))
        self._settings = settings or Settings.from_env()
        self._ahead = self._settings.prepare_ahead
        self._unsent_after = self._settings.unsent_after
        self._recover_every = min(RECOVER_EVERY, self._unsent_after / 2)
        self._jobs: dict[str, JobSpec] = {}
        self._cursors: dict[str, datetime] = {}
        self._due: list[_Due] = []
        self._lead = LeadPlanner(base=self._settings.prepare_ahead)  # counts `_due` per second
        self._at_due: list[_Due] = []  # `forbid` jobs busy when prepared: decided when due
        self._ready: list[_Ready] = []  # claimed and prepared, waiting for their instant
        self._unsent: list[_Unsent] = []
        self._resend_pending = False  # the broker lost its data: resend what it held
        self._seq = 0
        self._next_reload = 0.0
        self._next_heartbeat = datetime.min.replace(tzinfo=UTC)
        self._next_purge = datetime.min.replace(tzinfo=UTC)
        self._next_reap = datetime.min.replace(tzinfo=UTC)
        self._next_recover = datetime.min.replace(tzinfo=UTC)
        self._next_stats = datetime.min.replace(tzinfo=UTC)
        self._stats_thread: threading.Thread | None = None
        self._history_keep: timedelta | None = None
        self._id = f"beat@{socket.gethostname()}:{os.getpid()}"
        self._notifier = Notifier()
        super().__init__(app, *args, **kwargs)

    # -- start-up -----------------------------------------------------------------------

    def setup_schedule(self) -> None:
        from scheduler.celery_app import registered_tasks
        from scheduler.schedule_file import load_schedule

        self.store = HistoryStore(make_engine(self._settings.database_url))
        known = registered_tasks(self.app)
        self.watcher = ScheduleWatcher(
            self._settings.schedule_file,
            lambda path: load_schedule(
                path,
                known,
                _zone(self._settings.timezone),
                self._settings.max_schedule_bytes,
            ),
        )
        try:
            require_current(self.store.engine)
            schedule = self.watcher.load_initial()
        except (ScheduleError, SchemaOutOfDate) as exc:
            # Refuse to start: every error on stderr and in the log, non-zero exit.
            log.critical("beat refuses to start:\n%s", exc)
            print(exc, file=sys.stderr)
            raise SystemExit(1) from None
        now = self._clock()
        self._cursors = self.store.last_ticks()
        self._install(schedule, now, starting=True)
        self._sender = Sender(self.app, lambda: self.producer)
        log.info("schedule %s loaded: %d jobs", self._settings.schedule_file, len(self._jobs))
        try:
            # Connect now, not at the first due tick: that first send would pay for it.
            self.connection.ensure_connection(max_retries=1)
            self.producer  # noqa: B018 (a cached property that opens the channel)
        except Exception as exc:
            log.warning("broker not reachable at start (%s); retrying when a tick is due", exc)

    def _install(self, schedule: ScheduleFile, now: datetime, starting: bool = False) -> None:
        old = self._jobs
        self._jobs = dict(schedule.jobs)
        self._history_keep = schedule.history_keep
        changed = []
        for name, job in schedule.jobs.items():
            previous = old.get(name)
            if previous is not None and previous == job:
                # Unchanged, perhaps moved in the file: keep the object its heap entry holds,
                # or that entry would be dropped as stale and the job would never fire again.
                self._jobs[name] = previous
            else:
                changed.append(job)
        if not starting:
            self._unclaim_ahead({job.name for job in changed if job.name in old}, now)
        memo: TickMemo = {}
        for job in changed:
            if not starting or job.name not in self._cursors:
                # A new or edited job starts from now: editing a schedule never fires the
                # past, and a job never seen before has no missed ticks (SPEC §5).
                self._cursors[job.name] = max(self._cursors.get(job.name, now), now)
            self._push(job, self._cursors[job.name], memo)
        for name in old.keys() - self._jobs.keys():
            self._cursors.pop(name, None)

    def _unclaim_ahead(self, edited: set[str], now: datetime) -> None:
        """Give back the ticks of edited jobs that were claimed ahead and are not due yet.

        Their rows and prepared messages hold the old definition, and the new schedule may
        not even have those ticks (the lead can be minutes before a burst). Never sent, they
        can be unclaimed, and the job planned again from now as if they had never been.
        """
        ahead = [ready for ready in self._ready if ready.due_at > now]
        taken = [ready.item.run.id for ready in ahead if ready.item.job.name in edited]
        if not taken:
            return
        try:
            gone = self.store.unclaim(taken, now)
        except Exception:
            log.exception(
                "could not give back %d runs of edited jobs: sent as prepared", len(taken)
            )
            return
        self._ready = [ready for ready in self._ready if ready.item.run.id not in gone]
        heapq.heapify(self._ready)
        for ready in ahead:
            if ready.item.run.id in gone:
                self._cursors[ready.item.job.name] = now

    def _push(self, job: JobSpec, after: datetime, memo: TickMemo | None = None) -> None:
        if not job.enabled:
            return  # suspended: its ticks are neither run nor recorded until it is enabled
        upcoming = next_due(job, after, memo)
        if upcoming is not None:
            self._seq += 1
            tick_at, due_at = upcoming
            heapq.heappush(self._due, _Due(due_at, self._seq, job, tick_at))
            self._lead.add(due_at)

    # -- the loop -----------------------------------------------------------------------

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """Dispatch what is due; returns the seconds to sleep before the next call."""
        now = self._clock()
        if time.monotonic() >= self._next_reload:
            self._next_reload = time.monotonic() + RELOAD_EVERY
            changed = self.watcher.poll()
            if changed is not None:
                self._install(changed, now)
        self._housekeeping(now)
        self._send_ready(now)
        self._send_many(self._take_unsent(), now)
        lead = self._lead.lead(now)
        self._prepare_ahead(now, lead)
        wake = [ready[0].due_at for ready in (self._ready, self._at_due) if ready]
        if self._due:
            wake.append(self._due[0].due_at - lead)
        if not wake:
            return RELOAD_EVERY
        wait = (min(wake) - self._clock()).total_seconds()
        return max(0.0, min(wait, RELOAD_EVERY))

    def _prepare_ahead(self, now: datetime, lead: timedelta) -> None:
        """Claim and prepare the ticks due within `lead`, earliest first."""
        late: list[_Due] = []
        while self._at_due and self._at_due[0].due_at <= now:
            late.append(heapq.heappop(self._at_due))
        horizon = now + lead
        early: list[_Due] = []
        while self._due and self._due[0].due_at <= horizon:
            due = heapq.heappop(self._due)
            self._lead.remove(due.due_at)
            (late if due.due_at <= now else early).append(due)
        # Chunks, each sent as soon as it is due: the first runs go out while later ones are
        # still being prepared.
        chunks = [(late[i : i + PREPARE_CHUNK], False) for i in range(0, len(late), PREPARE_CHUNK)]
        chunks += [
            (early[i : i + PREPARE_CHUNK], True) for i in range(0, len(early), PREPARE_CHUNK)
        ]
        for dues, ahead in chunks:
            started = time.perf_counter()
            self._dispatch(dues, now, ahead=ahead)
            self._lead.measured(len(dues), time.perf_counter() - started)
            now = self._clock()
            self._send_ready(now)

    def _dispatch(self, dues: list[_Due], now: datetime, ahead: bool) -> None:
        """Plan, claim and prepare the ticks of these heap entries, all in one batch.

        One query for overlap and one transaction for every claim: a thousand jobs due at
        the same second cost a few round trips, not thousands. With `ahead`, each job is
        planned at its due instant (not yet come), and a `forbid` job that has a run in
        progress is put back to be decided at that instant.
        """
        current = [due for due in dues if self._jobs.get(due.job.name) is due.job]
        jobs = [due.job for due in current]  # the others were removed or edited since
        try:
            forbid = [job.name for job in jobs if job.overlap is Overlap.FORBID]
            active = self.store.active_jobs(forbid) if forbid else set()
            if ahead and active:
                for due in current:
                    if due.job.name in active:
                        heapq.heappush(self._at_due, due)
                jobs = [job for job in jobs if job.name not in active]
            at = {due.job.name: max(now, due.due_at) if ahead else now for due in current}
            plans = [
                (
                    job,
                    plan(job, self._cursors.get(job.name, now), at[job.name], job.name in active),
                )
                for job in jobs
            ]
            wanted = [
                (job, self._new_run(job, action.kind, action.tick_at, action.catchup))
                for job, decided in plans
                for action in decided.actions
            ]
            claimed = self.store.claim_many([run for _, run in wanted], now)
        except Exception:
            log.exception(
                "could not claim the due ticks of %d jobs; retrying in %s", len(jobs), RETRY_AFTER
            )
            for due in current:
                self._seq += 1
                retry_at = max(now + RETRY_AFTER, due.due_at)
                heapq.heappush(self._due, _Due(retry_at, self._seq, due.job, due.tick_at))
                self._lead.add(retry_at)
            return
        for job, decided in plans:
            if decided.uncounted_missed:
                log.warning(
                    "job %s: %d more missed ticks were not recorded one by one",
                    job.name,
                    decided.uncounted_missed,
                )
            if decided.newest_tick_at is not None:
                self._cursors[job.name] = max(
                    self._cursors.get(job.name, now), decided.newest_tick_at
                )
            self._push(job, self._cursors.get(job.name, now))
        mine = [(job, run) for job, run in wanted if run.id in claimed]  # the rest: another beat
        for job, run in mine:
            if run.status is RunStatus.QUEUED:
                send_at = max(now, due_at(job, run.tick_at) if run.tick_at else now)
                item = _Unsent(job, run, send_at)
                item.prepared = self._sender.prepare(
                    run.id,
                    lambda producer, item=item: publish(  # type: ignore[misc]
                        self.send_task, item.job, item.run, item.due_at, producer=producer
                    ),
                )
                self._seq += 1
                heapq.heappush(self._ready, _Ready(send_at, self._seq, item))
        for job, run in mine:
            if run.status is not RunStatus.QUEUED:
                self._recorded_without_run(job, run, now)

    def _new_run(self, job: JobSpec, kind: ActionKind, tick_at: datetime, catchup: bool) -> NewRun:
        return run_of(
            job,
            run_id_for(job.name, tick_at),
            Trigger.CATCHUP if catchup else Trigger.SCHEDULE,
            tick_at=tick_at,
            status=_STATUS_OF[kind],
            queue=job.queue or self.app.conf.task_default_queue,
        )

    def _recorded_without_run(self, job: JobSpec, run: NewRun, now: datetime) -> None:
        """Log a missed or skipped tick, and notify its webhook if the job asks."""
        tick = run.tick_at.isoformat() if run.tick_at else "?"
        if run.status is RunStatus.MISSED:
            log.warning("job %s: tick %s missed", job.name, tick)
        else:
            log.info("job %s: tick %s skipped, a run is still queued or running", job.name, tick)
        if job.notify and run.status.value in job.notify.on:
            self._notifier.send(
                job.notify.webhook,
                {
                    "run_id": run.id,
                    "job": job.name,
                    "task": job.task,
                    "status": run.status.value,
                    "tick_at": tick,
                    "at": now.isoformat(),
                },
            )

    def _send_ready(self, now: datetime) -> None:
        """Send the prepared runs whose instant has come."""
        items = []
        while self._ready and self._ready[0].due_at <= now:
            item = heapq.heappop(self._ready).item
            if item.job.name in self._jobs and self._jobs[item.job.name].enabled:
                items.append(item)  # an edit since it was prepared shows from the next tick
                continue
            try:
                self.store.record_finished(
                    item.run.id,
                    RunStatus.REVOKED,
                    now,
                    error_message="the job was removed or disabled before this tick",
                )
            except Exception:
                log.exception("could not revoke run %s of a removed job", item.run.id)
        if items:
            self._send_many(items, now)

    def _send_many(self, items: list[_Unsent], now: datetime) -> None:
        """Publish claimed runs; a run that cannot be published is kept and retried."""
        if not items:
            return
        prepared = []
        for item in items:
            ready = item.prepared or Prepared(item.run.id)
            ready.extra = item
            prepared.append(ready)
        sent = self._sender.send(
            prepared,
            lambda ready, producer: publish(
                self.send_task,
                ready.extra.job,
                ready.extra.run,
                ready.extra.due_at,
                producer=producer,
            ),
        )
        done = set(sent)
        for item in items:
            if item.run.id not in done:
                item.prepared = None  # published the usual way next time
                self._unsent.append(item)
        at = self._clock()
        for start in range(0, len(sent), MARK_CHUNK):
            try:
                self.store.mark_enqueued_many(sent[start : start + MARK_CHUNK], at)
            except Exception:
                # The messages are out; only their enqueued_at is missing from the history.
                log.exception("could not record that %d runs were sent", len(sent))
        lateness = (at - min(item.due_at for item in items)).total_seconds()
        log.info(
            "sent %d of %d due runs (%.0f ms after the first was due)",
            len(sent),
            len(items),
            lateness * 1000,
        )

    def _take_unsent(self) -> list[_Unsent]:
        pending, self._unsent = self._unsent, []
        return pending

    def _housekeeping(self, now: datetime) -> None:
        try:
            if now >= self._next_heartbeat:
                self._next_heartbeat = now + HEARTBEAT_EVERY
                self.store.heartbeat(
                    self._id,
                    "beat",
                    socket.gethostname(),
                    os.getpid(),
                    now,
                    detail=str(self._settings.schedule_file),
                )
            if self._history_keep and now >= self._next_purge:
                self._next_purge = now + PURGE_EVERY
                purged = self.store.purge(now - self._history_keep)
                if purged:
                    log.info("purged %d runs older than %s", purged, self._history_keep)
            if now >= self._next_reap:
                self._next_reap = now + REAP_EVERY
                self._reap(now)
            if now >= self._next_recover:
                self._next_recover = now + self._recover_every
                self._resend_lost(now)
                self._recover_unsent(now)
            if now >= self._next_stats and not (
                self._stats_thread and self._stats_thread.is_alive()
            ):
                self._next_stats = now + STATS_EVERY
                self._stats_thread = threading.Thread(
                    target=self._refresh_stats, args=(now,), name="stats-rollup", daemon=True
                )
                self._stats_thread.start()
        except Exception:
            log.exception("beat housekeeping (heartbeat, retention, reaper) failed; will retry")

    def _refresh_stats(self, now: datetime) -> None:
        try:
            self.store.refresh_stats(now)
        except Exception:
            log.exception("could not bring the stats rollup up to date; will retry")

    def _reap(self, now: datetime) -> None:
        lost = self.store.reap(now, self._settings.worker_timeout)
        lost += self.store.reap_queued(now, self._settings.queued_timeout)
        for run_id, job_name in lost:
            log.warning(
                "job %s: run %s lost (its worker stopped, or it was never started)",
                job_name,
                run_id,
            )
            job = self._jobs.get(job_name)
            if job is not None and job.notify and RunStatus.LOST.value in job.notify.on:
                self._notifier.send(
                    job.notify.webhook,
                    {
                        "run_id": run_id,
                        "job": job_name,
                        "task": job.task,
                        "status": "lost",
                        "at": now.isoformat(),
                    },
                )

    def _resend_lost(self, now: datetime) -> None:
        """Send again the runs sent but not started, if the broker has lost its data since.

        Their messages are gone (a Redis restarted without persistence), and they would
        stay `queued` until `queued_timeout` ended them `lost`. A copy of a message that
        was not lost after all is harmless: the worker runs a run once.
        """
        if "producer" in vars(self):  # else not connected yet: asking for it would wait
            try:
                self._resend_pending |= self._sender.lost_data()
            except Exception as exc:
                log.warning("could not check whether the broker lost its data: %s", exc)
        if not self._resend_pending:
            return
        rows = self.store.sent_not_started(now)  # if it fails, the next round asks again
        self._resend_pending = False
        items = []
        for row in rows:
            job = self._jobs.get(row.job_name)
            if job is None:
                continue  # left the schedule: the reaper ends it `lost`
            run = run_of(job, row.id, row.trigger, tick_at=row.tick_at, queue=row.queue)
            # Due when it was: its message expires when the lost one would have.
            items.append(_Unsent(job, run, due_at(job, row.tick_at) if row.tick_at else now))
        if not items:
            log.info("the broker is new, or has lost its data: no run was waiting in it")
            return
        log.warning(
            "the broker has lost its data (restarted without persistence, or flushed): "
            "sending again the %d runs sent but not started",
            len(items),
        )
        self._send_many(items, now)

    def _recover_unsent(self, now: datetime) -> None:
        """Send again the runs claimed (by any beat) but never recorded as sent."""
        retrying = {item.run.id for item in self._unsent}
        retrying.update(ready.item.run.id for ready in self._ready)
        items = []
        before = now - self._unsent_after
        for row in self.store.unsent(before):
            job = self._jobs.get(row.job_name)
            if row.id in retrying:
                continue
            if job is not None and row.tick_at and due_at(job, row.tick_at) > before:
                continue  # jittered: its owner holds it until its due time
            if job is None:
                self.store.record_finished(
                    row.id,
                    RunStatus.LOST,
                    now,
                    error_message="claimed but never sent, and its job left the schedule",
                )
                continue
            run = run_of(job, row.id, row.trigger, tick_at=row.tick_at, queue=row.queue)
            items.append(_Unsent(job, run, now))
        if items:
            log.warning("sending again %d runs claimed but never recorded as sent", len(items))
            self._send_many(items, now)

    def close(self, drain: bool = True) -> None:
        """Stop: first send what was claimed ahead, each at its instant (`prepare_ahead` at most).

        Left unsent, those claims would wait for another beat's recovery, `unsent_after` late.
        """
        deadline = time.monotonic() + self._ahead.total_seconds() + 1
        while drain and self._ready and time.monotonic() < deadline:
            wait = (self._ready[0].due_at - self._clock()).total_seconds()
            time.sleep(min(max(wait, 0.0), max(deadline - time.monotonic(), 0.0)))
            self._send_ready(self._clock())
        if self._ready:
            log.warning("%d runs claimed ahead are left for another beat", len(self._ready))
        self._notifier.close()
        if self._stats_thread is not None:
            self._stats_thread.join(timeout=30)
        try:
            self.store.forget_heartbeat(self._id)
        except Exception:
            log.exception("could not remove this beat's heartbeat")
        super().close()

    @property
    def info(self) -> str:
        return (
            f"schedule: {Path(self._settings.schedule_file)}, "
            f"history: {mask_url(self._settings.database_url)}"
        )


def run_of(
    job: JobSpec,
    run_id: str,
    trigger: Trigger,
    *,
    tick_at: datetime | None = None,
    status: RunStatus = RunStatus.QUEUED,
    queue: str | None = None,
) -> NewRun:
    """The history row of one run of a job (a tick's, a catch-up's or a manual one)."""
    return NewRun(
        id=run_id,
        job_name=job.name,
        task_name=job.task,
        trigger=trigger,
        status=status,
        tick_at=tick_at,
        queue=queue or job.queue,
        args=job.args,
        kwargs=job.kwargs,
    )


def publish(
    send_task: Callable[..., Any], job: JobSpec, run: NewRun, due_at: datetime, **options: Any
) -> None:
    """Publish one claimed run with the job's queue, priority, expiry, limits and headers."""
    send_task(
        job.task,
        args=list(job.args),
        kwargs=dict(job.kwargs),
        task_id=run.id,
        queue=job.queue,
        priority=job.priority,
        expires=due_at + job.expires if job.expires else None,
        time_limit=job.time_limit.total_seconds() if job.time_limit else None,
        soft_time_limit=job.soft_time_limit.total_seconds() if job.soft_time_limit else None,
        headers=message_headers(job, run.trigger),
        **options,
    )


def message_headers(job: JobSpec, trigger: Trigger) -> dict[str, Any]:
    """Headers that tell the worker which job a message is for and how to retry it."""
    headers: dict[str, Any] = {JOB_HEADER: job.name, TRIGGER_HEADER: trigger.value}
    if job.notify is not None:
        headers[NOTIFY_HEADER] = {"on": list(job.notify.on), "webhook": job.notify.webhook}
    if job.retry is not None:
        headers[RETRY_HEADER] = {
            "max": job.retry.max,
            "backoff": job.retry.backoff.total_seconds() if job.retry.backoff else 0,
            "backoff_max": job.retry.backoff_max.total_seconds() if job.retry.backoff_max else None,
        }
    return headers


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)
