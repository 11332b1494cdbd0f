"""Commands that need the broker or the history database: up, history, stats, trigger,
status, purge, db upgrade. Arguments and output only; the work is in the store and beat.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from scheduler.cli_common import (
    UserError,
    file_option,
    job_or_fail,
    load,
    print_table,
    schedule_path,
)
from scheduler.config import Settings, mask_url
from scheduler.history.statuses import RunStatus, Trigger


class NoHistoryYet(UserError):
    """Raised by a read of an embedded history database that was never created."""


HISTORY_FIELDS = (
    "id",
    "job_name",
    "task_name",
    "trigger",
    "status",
    "tick_at",
    "enqueued_at",
    "started_at",
    "finished_at",
    "duration_s",
    "attempts",
    "worker",
    "queue",
    "args",
    "kwargs",
    "result",
    "error_type",
    "error_message",
    "traceback",
)
ALIVE_WITHIN = timedelta(seconds=30)
STUCK_AFTER = timedelta(minutes=1)  # sent this long ago and not started: worth a line


def history_store(settings: Settings, *, upgrade: bool = False) -> Any:
    """The history store; the schema must be current (or is brought there with upgrade)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from scheduler.history import revision
    from scheduler.history.db import make_engine, sqlalchemy_url
    from scheduler.history.store import HistoryStore

    url = make_url(sqlalchemy_url(settings.database_url))
    if not upgrade and url.get_backend_name() == "sqlite" and not Path(url.database or "").exists():
        # A read must not leave an empty database file behind.
        raise NoHistoryYet(
            f"no history yet at {url.database}: run `scheduler up` or `scheduler db upgrade`"
        )
    engine = make_engine(settings.database_url)
    try:
        if upgrade:
            from scheduler.history import schema

            schema.upgrade(engine)
        else:
            revision.require_current(engine)
    except revision.SchemaOutOfDate as exc:
        raise UserError(str(exc)) from None
    except SQLAlchemyError as exc:
        raise UserError(
            f"history database {mask_url(settings.database_url)} is unreachable: {_first_line(exc)}"
        ) from None
    return HistoryStore(engine)


def _first_line(exc: BaseException) -> str:
    return mask_url(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)


def parse_since(text: str, now: datetime) -> datetime:
    """`1d`, `90m` (that long before now) or an ISO 8601 instant (naive = UTC)."""
    from scheduler.fieldparsers import parse_duration_text

    try:
        return now - parse_duration_text(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is neither a duration (1d, 6h) nor ISO 8601") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return (
        value.value
        if hasattr(value, "value") and not isinstance(value, str | int | float)
        else value
    )


@click.command()
@click.option("--job", "job_name", help="Only this job.")
@click.option(
    "--status",
    type=click.Choice([status.value for status in RunStatus]),
)
@click.option("--trigger", type=click.Choice([trigger.value for trigger in Trigger]))
@click.option("--since", metavar="DUR|ISO", help="Runs created since (e.g. 1d, 2026-03-01).")
@click.option("--until", metavar="ISO", help="Runs created before this instant.")
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=50, show_default=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
def history(
    job_name: str | None,
    status: str | None,
    trigger: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    fmt: str,
) -> None:
    """Runs, newest first."""
    from scheduler.history.store import RunFilter

    now = datetime.now(UTC)
    flt = RunFilter(
        job_name=job_name,
        status=RunStatus(status) if status else None,
        trigger=Trigger(trigger) if trigger else None,
        since=parse_since(since, now) if since else None,
        until=parse_since(until, now) if until else None,
        limit=limit,
    )
    runs = history_store(Settings.from_env()).runs(flt)
    rows = [{field: _jsonable(getattr(run, field)) for field in HISTORY_FIELDS} for run in runs]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
    elif fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=HISTORY_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in row.items()}
            )
        click.echo(out.getvalue(), nl=False)
    else:
        print_table(
            f"{len(rows)} runs",
            (
                "job",
                "status",
                "trigger",
                "tick",
                "started",
                "duration",
                "attempts",
                "worker",
                "error",
            ),
            [
                (
                    r["job_name"],
                    r["status"],
                    r["trigger"],
                    _short(r["tick_at"]),
                    _short(r["started_at"]),
                    f"{r['duration_s']:.3f}s" if r["duration_s"] is not None else "-",
                    str(r["attempts"]),
                    r["worker"] or "-",
                    f"{r['error_type']}: {r['error_message']}"
                    if r["error_type"]
                    else (r["error_message"] or ""),
                )
                for r in rows
            ],
        )


def _short(iso: str | None) -> str:
    """`2026-03-08T07:00:00.123456+00:00` -> `2026-03-08 07:00:00.123` (UTC, as stored)."""
    if not iso:
        return "-"
    at = datetime.fromisoformat(iso).astimezone(UTC)
    return at.strftime("%Y-%m-%d %H:%M:%S.") + f"{at.microsecond // 1000:03d}"


@click.command()
@click.option("--since", metavar="DUR|ISO", default="7d", show_default=True)
@click.option(
    "--exact",
    is_flag=True,
    help="Exact p50/p95, read from every run of the window (slow on a big history).",
)
@file_option
@click.pass_context
def stats(ctx: click.Context, since: str, exact: bool) -> None:
    """Per job: runs, successes, failures, success rate, p50/p95 duration, last run, next tick."""
    schedule = load(schedule_path(ctx))
    now = datetime.now(UTC)
    start = parse_since(since, now)
    store = history_store(Settings.from_env())
    found = {s.job_name: s for s in store.stats(start, exact=exact, now=now)}
    error = max((s.percentile_error for s in found.values()), default=0.0)
    rows = []
    for name in sorted(set(found) | set(schedule.jobs)):
        s, job = found.get(name), schedule.jobs.get(name)
        tick = job.next_tick(now) if job and job.enabled else None
        rate = s.success_rate if s else None
        rows.append(
            (
                name,
                str(s.runs if s else 0),
                str(s.succeeded if s else 0),
                str(s.failed if s else 0),
                f"{rate:.1%}" if rate is not None else "-",
                _seconds(s.p50_s if s else None),
                _seconds(s.p95_s if s else None),
                f"{_short(s.last_run_at.isoformat())} {s.last_status}"
                if s and s.last_run_at
                else "-",
                tick.astimezone(job.tz).isoformat(timespec="seconds") if tick and job else "-",
            )
        )
    title = f"runs since {start.isoformat(timespec='seconds')}"
    if error:
        title += f"; p50/p95 within {error:.1%} (--exact to read every run)"
    print_table(
        title,
        ("job", "runs", "ok", "failed", "success", "p50", "p95", "last run", "next tick"),
        rows,
    )


def _seconds(value: float | None) -> str:
    return f"{value:.3f}s" if value is not None else "-"


@click.command()
@click.argument("name")
@click.option("--wait", is_flag=True, help="Wait for the run to finish and print its outcome.")
@click.option(
    "--timeout", type=float, default=300.0, show_default=True, help="Seconds --wait waits."
)
@file_option
@click.pass_context
def trigger(ctx: click.Context, name: str, wait: bool, timeout: float) -> None:
    """Enqueue a manual run of job NAME now and print its run id."""
    from scheduler.beat import publish, run_of
    from scheduler.celery_app import app
    from scheduler.history.models import FINAL_STATUSES, RunStatus, Trigger

    job = job_or_fail(load(schedule_path(ctx)), name)
    store = history_store(Settings.from_env())
    run_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    run = run_of(job, run_id, Trigger.MANUAL)
    store.claim(run, now)
    try:
        publish(app.send_task, job, run, now)
    except Exception as exc:
        store.record_finished(
            run_id,
            RunStatus.LOST,
            datetime.now(UTC),
            error_type=type(exc).__name__,
            error_message=f"could not publish: {_first_line(exc)}",
        )
        raise UserError(
            f"broker {mask_url(app.conf.broker_url)} refused the run: {_first_line(exc)}"
        ) from None
    store.mark_enqueued(run_id, datetime.now(UTC))
    click.echo(run_id)
    if not wait:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = store.get(run_id)
        if run is not None and run.status in FINAL_STATUSES:
            took = f" in {run.duration_s:.3f}s" if run.duration_s is not None else ""
            error = f": {run.error_type}: {run.error_message}" if run.error_type else ""
            click.echo(f"{run.status}{took}{error}")
            if run.status is not RunStatus.SUCCEEDED:
                sys.exit(1)
            return
        time.sleep(0.2)
    raise UserError(f"run {run_id} did not finish within {timeout:g}s (it may still run)")


@click.command()
@file_option
@click.pass_context
def status(ctx: click.Context) -> None:
    """Beats and workers alive, schedule file valid or why not, queue backlog."""
    settings = Settings.from_env()
    now = datetime.now(UTC)
    healthy = True
    click.echo(f"broker:   {mask_url(settings.broker_url)}")
    click.echo(f"database: {mask_url(settings.database_url)}")
    queues = {"celery"}
    try:
        schedule = load(schedule_path(ctx))
        click.echo(f"schedule: {schedule.path}: valid, {len(schedule.jobs)} jobs")
        queues |= {job.queue for job in schedule.jobs.values() if job.queue}
    except UserError as exc:
        healthy = False
        click.echo(f"schedule: INVALID\n{exc.message}")
    try:
        store = history_store(settings)
        for kind in ("beat", "worker"):
            alive = store.alive(kind, now, ALIVE_WITHIN)
            names = ", ".join(
                f"{h.id} (seen {max(0.0, (now - h.seen_at).total_seconds()):.0f}s ago)"
                for h in alive
            )
            label = f"{kind}s:"
            click.echo(f"{label:<10}{len(alive)} alive{': ' + names if names else ''}")
        waiting = store.sent_not_started(now - STUCK_AFTER)
        if waiting:
            # The symptom of messages lost by the broker, or of a queue no worker consumes.
            oldest = min(run.enqueued_at for run in waiting if run.enqueued_at)
            click.echo(
                f"runs:     {len(waiting)} sent over {STUCK_AFTER.seconds} s ago and not "
                f"started (oldest sent {oldest:%Y-%m-%d %H:%M:%S}Z; queues: "
                f"{', '.join(sorted({run.queue or 'celery' for run in waiting}))})"
            )
    except UserError as exc:
        healthy = False
        click.echo(f"history:  ERROR {exc.message}")
    for queue, backlog in _backlogs(sorted(queues)).items():
        click.echo(f"queue {queue}: {backlog}")
    if not healthy:
        sys.exit(1)


def _backlogs(queues: list[str]) -> dict[str, str]:
    from scheduler.celery_app import app

    found: dict[str, str] = {}
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
            channel = conn.default_channel
            for queue in queues:
                try:
                    _, messages, consumers = channel.queue_declare(queue=queue, passive=True)
                    found[queue] = f"{messages} waiting, {consumers} consumers"
                except Exception:
                    # Redis keeps no key for an empty queue; AMQP has none until declared.
                    found[queue] = "0 waiting (empty or not declared yet)"
                    channel = conn.channel()
    except Exception as exc:
        return {q: f"broker unreachable: {_first_line(exc)}" for q in queues}
    return found


@click.command()
@click.option("--older-than", "older_than", required=True, metavar="DUR", help="e.g. 30d")
def purge(older_than: str) -> None:
    """Delete finished history rows older than DUR."""
    from scheduler.fieldparsers import parse_duration_text

    try:
        age = parse_duration_text(older_than)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from None
    deleted = history_store(Settings.from_env()).purge(datetime.now(UTC) - age)
    click.echo(f"purged {deleted} runs older than {older_than}")


@click.group()
def db() -> None:
    """The history database."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply migrations (creates the schema on an empty database)."""
    from scheduler.history import schema
    from scheduler.history.db import make_engine

    settings = Settings.from_env()
    try:
        before, after = schema.upgrade(make_engine(settings.database_url))
    except Exception as exc:
        raise UserError(
            f"could not upgrade {mask_url(settings.database_url)}: {_first_line(exc)}"
        ) from None
    click.echo(f"{mask_url(settings.database_url)}: at revision {after} (was {before or 'empty'})")


@click.command()
@click.option("--concurrency", "-c", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--loglevel", "-l", default="info", show_default=True)
@file_option
@click.pass_context
def up(ctx: click.Context, concurrency: int, loglevel: str) -> None:
    """Create/upgrade the database, validate, then run beat and a worker until Ctrl-C."""
    settings = Settings.from_env()
    path = schedule_path(ctx)
    schedule = load(path)
    history_store(settings, upgrade=True)
    click.echo(
        f"scheduler up: {len(schedule.jobs)} jobs from {path}, "
        f"broker {mask_url(settings.broker_url)}, history {mask_url(settings.database_url)}; "
        "Ctrl-C stops"
    )
    env = {**os.environ, "SCHEDULER_SCHEDULE_FILE": str(path)}
    celery = [sys.executable, "-m", "celery", "-A", "scheduler"]
    os.makedirs("var", exist_ok=True)
    procs = [
        subprocess.Popen([*celery, "worker", "-l", loglevel, "-c", str(concurrency)], env=env),
        subprocess.Popen(
            [*celery, "beat", "-l", loglevel, "-s", os.path.join("var", "celerybeat-schedule")],
            env=env,
        ),
    ]
    code = 0
    # systemd, Docker and supervisors stop a service with SIGTERM to its main process alone:
    # by default that would end this process and leave beat and worker running, orphaned.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        code = next(p.returncode for p in procs if p.returncode is not None) or 1
        click.echo("scheduler up: a process stopped; stopping the other", err=True)
    except KeyboardInterrupt:
        click.echo("scheduler up: stopping beat and worker", err=True)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    sys.exit(code)


COMMANDS = (up, history, stats, trigger, status, purge, db)
