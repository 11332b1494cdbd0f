"""The `scheduler` command: parsing arguments and formatting output only (SPEC §7).

Heavy imports (Celery, the job modules) happen inside commands, so `--help` is instant.
Exit codes: 0 success, 1 user error (invalid file, unknown job), 2 usage error (click's).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from scheduler.cli_common import (
    UserError,
    file_option,
    job_or_fail,
    load,
    print_table,
    schedule_path,
)
from scheduler.cli_ops import COMMANDS, NoHistoryYet, history_store
from scheduler.spec import JobSpec


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@file_option
@click.version_option(package_name="scheduler")
def cli() -> None:
    """Scheduled jobs on Celery beat, from one schedules.yaml."""


@cli.command()
@click.argument("path", required=False, type=click.Path(path_type=Path, dir_okay=False))
@file_option
@click.pass_context
def validate(ctx: click.Context, path: Path | None) -> None:
    """Check a schedule file; print `OK: N jobs` or every error."""
    schedule = load(path or schedule_path(ctx))
    click.echo(f"OK: {len(schedule.jobs)} job{'s' if len(schedule.jobs) != 1 else ''}")


@cli.command("next")
@click.argument("name")
@click.option("-n", "count", type=click.IntRange(1, 100_000), default=5, show_default=True)
@click.option(
    "--after", metavar="ISO8601", help="Start after this instant (naive: job's timezone)."
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@file_option
@click.pass_context
def next_command(ctx: click.Context, name: str, count: int, after: str | None, fmt: str) -> None:
    """Print the next ticks of job NAME (no broker or database needed)."""
    from scheduler.timeengine.ticks import resolve_wall_time

    schedule = load(schedule_path(ctx))
    job = job_or_fail(schedule, name)
    if after is None:
        after_at = datetime.now(UTC)
    else:
        try:
            parsed = datetime.fromisoformat(after)
        except ValueError:
            raise click.BadParameter(
                f"{after!r} is not ISO 8601 (e.g. 2026-03-08T00:00 or 2026-03-08T00:00:00-05:00)",
                param_hint="--after",
            ) from None
        after_at = parsed if parsed.tzinfo else resolve_wall_time(parsed, job.tz)
    if not job.enabled:
        click.echo(
            f"note: job {name!r} is disabled (enabled: false); showing its ticks anyway", err=True
        )
    ticks = [tick.astimezone(job.tz).isoformat() for tick in job.next_ticks(after_at, count)]
    if len(ticks) < count:
        click.echo(
            f"note: job {name!r} has {len(ticks)} tick(s) left after {after_at.isoformat()}",
            err=True,
        )
    if fmt == "json":
        click.echo(json.dumps(ticks))
    else:
        for tick in ticks:
            click.echo(tick)


def _schedule_text(job: JobSpec) -> str:
    from scheduler.timeengine.describe import describe
    from scheduler.timeengine.ticks import CronSchedule

    text = describe(job.schedule, job.tz)
    if isinstance(job.schedule, CronSchedule):
        return f"{job.schedule.expr.text} ({text})"
    return text


@cli.command()
@file_option
@click.pass_context
def jobs(ctx: click.Context) -> None:
    """Table of jobs: schedule, timezone, next tick, enabled, last status."""
    schedule = load(schedule_path(ctx))
    now = datetime.now(UTC)
    last = _last_statuses(list(schedule.jobs))
    rows = []
    for job in schedule.jobs.values():
        tick = job.next_tick(now)
        rows.append(
            (
                job.name,
                _schedule_text(job),
                job.tz.key,
                tick.astimezone(job.tz).isoformat(timespec="seconds") if tick else "-",
                "yes" if job.enabled else "no",
                last.get(job.name, "-"),
            )
        )
    print_table(
        f"{len(schedule.jobs)} jobs in {schedule.path}",
        ("name", "schedule", "timezone", "next tick", "enabled", "last status"),
        rows,
    )


def _last_statuses(names: list[str]) -> dict[str, str]:
    from scheduler.config import Settings

    try:
        found = history_store(Settings.from_env()).last_statuses(names)
    except NoHistoryYet:
        return {}
    except UserError as exc:
        click.echo(f"note: last status unavailable: {exc.message}", err=True)
        return {}
    return {name: str(status) for name, status in found.items()}


def main() -> None:
    """Entry point of the `scheduler` console script."""
    cli(obj={})


# Commands that talk to the broker or the database live in their own module.
for _command in COMMANDS:
    cli.add_command(_command)
