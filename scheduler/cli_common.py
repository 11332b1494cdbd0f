"""What every command shares: the user-error type, `--file`, loading the schedule file."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from scheduler.errors import ScheduleError, UnknownJobError
from scheduler.fieldparsers import suggest
from scheduler.spec import JobSpec, ScheduleFile

F = TypeVar("F", bound=Callable[..., Any])


class UserError(click.ClickException):
    """A mistake of the user's (exit 1), printed as is: no `Error:` prefix, no traceback."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(self.message, err=True)


def _remember_file(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        # On the root context, where `schedule_path` looks: a subcommand's own `obj` is a new
        # dict when the group was invoked without one (as `cli()` and CliRunner do).
        ctx.find_root().ensure_object(dict)["file"] = value


def file_option(func: F) -> F:
    """`--file PATH`, accepted before or after the command name."""
    return click.option(
        "--file",
        "-f",
        type=click.Path(path_type=Path, dir_okay=False),
        callback=_remember_file,
        expose_value=False,
        is_eager=True,
        help="Schedule file (default: $SCHEDULER_SCHEDULE_FILE or ./schedules.yaml).",
    )(func)


def schedule_path(ctx: click.Context) -> Path:
    from scheduler.config import Settings

    chosen: Path | None = ctx.find_root().ensure_object(dict).get("file")
    return chosen or Settings.from_env().schedule_file


def load(path: Path) -> ScheduleFile:
    """The validated schedule file; raises UserError listing every problem."""
    from zoneinfo import ZoneInfo

    from scheduler.celery_app import app, registered_tasks, settings
    from scheduler.schedule_file import load_schedule

    try:
        default_tz = ZoneInfo(settings.timezone)
    except (KeyError, ValueError):
        raise UserError(f"SCHEDULER_TIMEZONE: unknown timezone {settings.timezone!r}") from None
    try:
        return load_schedule(path, registered_tasks(app), default_tz, settings.max_schedule_bytes)
    except ScheduleError as exc:
        count = len(exc.problems)
        raise UserError(f"{exc}\n{count} error{'s' if count != 1 else ''} in {path}") from None


def find_job(schedule: ScheduleFile, name: str) -> JobSpec:
    try:
        return schedule.jobs[name]
    except KeyError:
        raise UnknownJobError(name, list(schedule.jobs)) from None


def job_or_fail(schedule: ScheduleFile, name: str) -> JobSpec:
    try:
        return find_job(schedule, name)
    except UnknownJobError as exc:
        raise UserError(f"unknown job {name!r}{suggest(name, exc.known)}") from None


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A title line, then a table; wide and unwrapped when the output is not a terminal."""
    from rich.console import Console
    from rich.table import Table

    # A plain line, not the table's title: rich wraps a title to the table's width, and
    # scripts read this line.
    click.echo(title)
    table = Table()
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console(width=None if sys.stdout.isatty() else 200).print(table)
