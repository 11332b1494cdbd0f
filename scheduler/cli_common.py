"""What every command shares: the user-error type, `--file`, loading the schedule file."""

from __future__ import annotations

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
    """A title line, then a table in rich's default box, never wrapped.

    Drawn here, not by rich: rich measures and lays out every cell, about 1.5 ms per row,
    so `stats` on 2,000 jobs spent 3 s drawing; this is one format per row.
    """
    # A plain line, not the table's title: scripts read this line.
    from rich.cells import cell_len  # columns on screen: a CJK character takes two

    click.echo(title)
    widths = [cell_len(c) for c in columns]
    for row in rows:
        widths = [max(w, cell_len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(left: str, fill: str, mid: str, right: str) -> str:
        return left + mid.join(fill * (w + 2) for w in widths) + right

    def cells(edge: str, values: Sequence[str]) -> str:
        padded = (f" {v}{' ' * (w - cell_len(v))} " for v, w in zip(values, widths, strict=True))
        return edge + edge.join(padded) + edge

    out = [line("┏", "━", "┳", "┓"), cells("┃", columns), line("┡", "━", "╇", "┩")]
    out.extend(cells("│", row) for row in rows)
    out.append(line("└", "─", "┴", "┘"))
    click.echo("\n".join(out))
