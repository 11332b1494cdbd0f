"""The `scheduler` command (SPEC §7): validate, next and jobs, in process and as real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from freezegun import freeze_time

from scheduler.cli import cli

ROOT = Path(__file__).parent.parent
BAD = Path(__file__).parent / "data" / "bad"

SCHEDULE = """\
timezone: UTC
jobs:
  dst:
    task: jobs.health.ping
    cron: "30 2 * * *"
    timezone: America/New_York
    description: Half past two in New York
  heartbeat:
    task: jobs.health.ping
    every: 1h
  paused:
    task: jobs.demo.noop
    every: 30m
    enabled: false
  launch:
    task: jobs.notify.announce
    at: 2030-01-02T09:00
    timezone: Europe/London
"""
INVALID = "jobs:\n  x:\n    task: jobs.health.ping\n    every: 0s\n"


@pytest.fixture
def schedule_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A valid schedule file; the working directory has none, so a fallback would fail."""
    path = tmp_path / "conf" / "jobs.yaml"
    path.parent.mkdir()
    path.write_text(SCHEDULE, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SCHEDULER_SCHEDULE_FILE", raising=False)
    return path


@pytest.fixture
def invalid_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "invalid.yaml"
    path.write_text(INVALID, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SCHEDULER_SCHEDULE_FILE", raising=False)
    return path


def run(*args: str | Path, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


def assert_user_error(result: Result) -> None:
    """Exit 1, the message on stderr only, no traceback, no click `Error:` prefix."""
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert "Traceback" not in result.output
    assert not result.stderr.startswith("Error:")
    # CliRunner turns a crash into exit code 1 too; a clean user error is a SystemExit.
    assert isinstance(result.exception, SystemExit), result.exception


# --- validate -------------------------------------------------------------------------------


def test_validate_ok(schedule_file: Path) -> None:
    result = run("validate", schedule_file)
    assert result.exit_code == 0
    assert result.stdout == "OK: 4 jobs\n"
    assert result.stderr == ""


def test_validate_no_jobs(tmp_path: Path) -> None:
    path = tmp_path / "empty-jobs.yaml"
    path.write_text("jobs: {}\n")
    result = run("validate", path)
    assert result.exit_code == 0
    assert result.stdout == "OK: 0 jobs\n"


def test_validate_prints_every_error(tmp_path: Path) -> None:
    path = BAD / "timezone_unknown.yaml"
    result = run("validate", path)
    assert_user_error(result)
    assert result.stderr == (
        f"{path}:1:11: timezone: unknown timezone 'Europe/Londn' (did you mean 'Europe/London'?)\n"
        f"{path}:6:15: jobs.nightly.timezone: unknown timezone 'America/New_Yrok' "
        "(did you mean 'America/New_York'?)\n"
        f"2 errors in {path}\n"
    )


def test_validate_prints_all_of_many_errors_in_file_order() -> None:
    path = BAD / "many_problems.yaml"
    result = run("validate", path)
    assert_user_error(result)
    lines = result.stderr.splitlines()
    assert lines[-1] == f"10 errors in {path}"
    positions = [line.removeprefix(f"{path}:").split(":")[:2] for line in lines[:-1]]
    assert positions == [
        ["2", "3"],
        ["3", "11"],
        ["4", "5"],
        ["5", "22"],
        ["9", "12"],
        ["10", "15"],
        ["11", "3"],
        ["14", "11"],
        ["16", "3"],
        ["17", "12"],
    ]
    assert f"{path}:4:5: jobs.nightly.crn: unknown key 'crn' (did you mean 'cron'?)" in lines


def test_validate_whole_file_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    result = run("validate", empty)
    assert_user_error(result)
    assert result.stderr == (
        f"{empty}: file is empty (a schedule needs at least `jobs: {{}}`)\n1 error in {empty}\n"
    )
    result = run("validate", tmp_path / "missing.yaml")
    assert_user_error(result)
    assert result.stderr.startswith(f"{tmp_path / 'missing.yaml'}: file not found\n")


def test_validate_billion_laughs() -> None:
    path = BAD / "billion_laughs.yaml"
    result = run("validate", path)
    assert_user_error(result)
    assert result.stderr.startswith(
        f"{path}:5:8: alias *d expands the document past 10,000 nodes (alias expansion bomb?)\n"
    )


@pytest.mark.parametrize(
    "args",
    [
        ["--file", "{f}", "validate"],
        ["validate", "--file", "{f}"],
        ["-f", "{f}", "validate"],
        ["validate", "-f", "{f}"],
        ["validate", "{f}"],
        ["--file", "{f}", "jobs"],
        ["jobs", "--file", "{f}"],
        ["--file", "{f}", "next", "heartbeat", "-n", "1"],
        ["next", "heartbeat", "--file", "{f}", "-n", "1"],
        ["next", "--file", "{f}", "heartbeat", "-n", "1"],
    ],
)
def test_file_option_before_and_after_the_command(schedule_file: Path, args: list[str]) -> None:
    result = run(*(a.replace("{f}", str(schedule_file)) for a in args))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout


def test_file_from_environment_and_default(schedule_file: Path, tmp_path: Path) -> None:
    result = run("validate", env={"SCHEDULER_SCHEDULE_FILE": str(schedule_file)})
    assert result.exit_code == 0
    assert result.stdout == "OK: 4 jobs\n"
    # No option, no variable: ./schedules.yaml (here there is none).
    result = run("validate")
    assert_user_error(result)
    assert result.stderr.startswith("schedules.yaml: file not found\n")
    (tmp_path / "schedules.yaml").write_text("jobs: {}\n")
    assert run("validate").stdout == "OK: 0 jobs\n"


def test_file_option_wins_over_environment(schedule_file: Path, invalid_file: Path) -> None:
    env = {"SCHEDULER_SCHEDULE_FILE": str(invalid_file)}
    assert run("validate", "--file", schedule_file, env=env).stdout == "OK: 4 jobs\n"
    assert run("--file", schedule_file, "validate", env=env).stdout == "OK: 4 jobs\n"


def test_shipped_schedule_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = run("validate", env={"SCHEDULER_SCHEDULE_FILE": None})
    assert result.exit_code == 0, result.output
    assert result.stdout == "OK: 6 jobs\n"


# --- next -----------------------------------------------------------------------------------


# America/New_York 2026: 02:00 -> 03:00 on 8 March; 02:00 -> 01:00 on 1 November.
@pytest.mark.parametrize(
    ("after", "expected"),
    [
        # 02:30 falls in the gap on 8 March: once, at the first instant after it.
        (
            "2026-03-07T12:00",
            ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00"],
        ),
        (
            "2026-10-31T12:00",
            ["2026-11-01T02:30:00-05:00", "2026-11-02T02:30:00-05:00", "2026-11-03T02:30:00-05:00"],
        ),
        # Naive means New York time: 03:00 there is after the 02:30 of the 7th.
        (
            "2026-03-07T03:00",
            ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00"],
        ),
        # With an offset it is that instant: 03:00 UTC is 22:00 on the 6th in New York.
        (
            "2026-03-07T03:00:00+00:00",
            ["2026-03-07T02:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"],
        ),
        (
            "2026-03-07T03:00:00Z",
            ["2026-03-07T02:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"],
        ),
        # Strictly after.
        (
            "2026-03-09T02:30:00-04:00",
            ["2026-03-10T02:30:00-04:00", "2026-03-11T02:30:00-04:00", "2026-03-12T02:30:00-04:00"],
        ),
    ],
)
def test_next_text(schedule_file: Path, after: str, expected: list[str]) -> None:
    result = run("next", "dst", "--file", schedule_file, "--after", after, "-n", "3")
    assert result.exit_code == 0, result.output
    assert result.stdout == "".join(f"{tick}\n" for tick in expected)
    assert result.stderr == ""


def test_next_json(schedule_file: Path) -> None:
    args = ["next", "dst", "-f", schedule_file, "--after", "2026-03-07T12:00", "-n", "2"]
    result = run(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == 1
    assert json.loads(result.stdout) == ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]


def test_next_utc_offset_is_numeric(schedule_file: Path) -> None:
    args = ["next", "heartbeat", "-f", schedule_file, "--after", "2026-03-07T12:00:00Z", "-n", "2"]
    text = run(*args)
    assert text.stdout == "2026-03-07T13:00:00+00:00\n2026-03-07T14:00:00+00:00\n"
    as_json = run(*args, "--format", "json")
    assert json.loads(as_json.stdout) == ["2026-03-07T13:00:00+00:00", "2026-03-07T14:00:00+00:00"]
    assert "Z" not in text.stdout + as_json.stdout


def test_next_count(schedule_file: Path) -> None:
    base = ["next", "heartbeat", "-f", schedule_file, "--after", "2026-03-07T12:00"]
    assert run(*base, "-n", "1").stdout == "2026-03-07T13:00:00+00:00\n"
    assert len(run(*base).stdout.splitlines()) == 5  # the default
    assert len(run(*base, "-n", "24").stdout.splitlines()) == 24
    result = run(*base, "-n", "0")
    assert result.exit_code == 2
    assert result.stdout == ""


def test_next_previews_a_disabled_job(schedule_file: Path) -> None:
    result = run("next", "paused", "-f", schedule_file, "--after", "2026-03-07T12:00", "-n", "2")
    assert result.exit_code == 0
    assert result.stdout == "2026-03-07T12:30:00+00:00\n2026-03-07T13:00:00+00:00\n"
    assert "job 'paused' is disabled" in result.stderr


def test_next_of_a_one_off_job(schedule_file: Path) -> None:
    result = run("next", "launch", "-f", schedule_file, "--after", "2026-03-07T12:00", "-n", "3")
    assert result.exit_code == 0
    assert result.stdout == "2030-01-02T09:00:00+00:00\n"
    assert "has 1 tick(s) left" in result.stderr
    after = run(
        "next", "launch", "-f", schedule_file, "--after", "2030-01-02T09:00", "--format", "json"
    )
    assert after.exit_code == 0
    assert json.loads(after.stdout) == []


def test_next_unknown_job(schedule_file: Path) -> None:
    result = run("next", "dts", "-f", schedule_file)
    assert_user_error(result)
    assert result.stderr == "unknown job 'dts' (did you mean 'dst'?)\n"


@pytest.mark.parametrize("after", ["yesterday", "2026-13-01T00:00", "2026-03-07 12:00 EST"])
def test_next_bad_after_is_a_usage_error(schedule_file: Path, after: str) -> None:
    result = run("next", "dst", "-f", schedule_file, "--after", after)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "--after" in result.stderr
    assert "is not ISO 8601" in result.stderr
    assert "Traceback" not in result.stderr


# --- jobs -----------------------------------------------------------------------------------


@freeze_time("2026-03-07T12:00:00+00:00")
def test_jobs_table(schedule_file: Path) -> None:
    result = run("jobs", "-f", schedule_file)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].strip() == f"4 jobs in {schedule_file}"

    def row(name: str) -> str:
        [line] = [line for line in lines if line.startswith(f"│ {name} ")]
        return line

    expected = {
        "dst": ["30 2 * * * (At 02:30)", "America/New_York", "2026-03-08T03:00:00-04:00", "yes"],
        "heartbeat": ["Every 1h", "UTC", "2026-03-07T13:00:00+00:00", "yes"],
        "paused": ["Every 30m", "UTC", "2026-03-07T12:30:00+00:00", "no"],
        "launch": [
            "Once, at 2030-01-02T09:00+00:00",
            "Europe/London",
            "2030-01-02T09:00:00+00:00",
            "yes",
        ],
    }
    for name, cells in expected.items():
        assert [cell.strip() for cell in row(name).split("│")[2:-2]] == cells


def test_jobs_empty(tmp_path: Path) -> None:
    path = tmp_path / "none.yaml"
    path.write_text("jobs: {}\n")
    result = run("jobs", "-f", path)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0].strip() == f"0 jobs in {path}"


# --- an invalid file, whatever the command ---------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["validate"], ["next", "x"], ["next", "x", "--after", "2026-01-01T00:00"], ["jobs"]],
)
def test_invalid_file_fails_every_command(invalid_file: Path, args: list[str]) -> None:
    result = run("--file", invalid_file, *args)
    assert_user_error(result)
    assert result.stderr == (
        f"{invalid_file}:4:12: jobs.x.every: must be a positive duration, got 0s\n"
        f"1 error in {invalid_file}\n"
    )


# --- real processes ---------------------------------------------------------------------------


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
    env.update(extra)
    return env


def test_next_needs_no_broker_or_database(schedule_file: Path) -> None:
    # Closed ports: any attempt to connect would fail or hang in retries.
    env = subprocess_env(
        SCHEDULER_BROKER_URL="redis://127.0.0.1:1/0",
        SCHEDULER_DATABASE_URL="postgresql://u:p@127.0.0.1:1/x",
    )
    command = [sys.executable, "-m", "scheduler", "next", "dst", "--file", str(schedule_file)]
    result = subprocess.run(
        [*command, "--after", "2026-03-07T12:00", "-n", "2", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]
    validate = subprocess.run(
        [sys.executable, "-m", "scheduler", "validate", str(schedule_file)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert (validate.returncode, validate.stdout) == (0, "OK: 4 jobs\n")


def test_console_script_reports_errors_without_traceback(invalid_file: Path) -> None:
    script = Path(sys.executable).parent / "scheduler"
    result = subprocess.run(
        [str(script), "jobs", "--file", str(invalid_file)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"{invalid_file}:4:12: jobs.x.every: must be a positive duration, got 0s\n"
        f"1 error in {invalid_file}\n"
    )


def test_scheduler_timezone_is_the_default_for_a_file_without_one(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("jobs:\n  launch:\n    task: jobs.notify.announce\n    at: 2030-01-02T09:00\n")
    command = [sys.executable, "-m", "scheduler", "--file", str(path), "next", "launch"]
    in_new_york = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=subprocess_env(SCHEDULER_TIMEZONE="America/New_York"),
        timeout=60,
        check=False,
    )
    assert (in_new_york.returncode, in_new_york.stdout) == (0, "2030-01-02T09:00:00-05:00\n")
    unknown = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=subprocess_env(SCHEDULER_TIMEZONE="Mars/Olympus_Mons"),
        timeout=60,
        check=False,
    )
    assert unknown.returncode == 1
    assert unknown.stderr == "SCHEDULER_TIMEZONE: unknown timezone 'Mars/Olympus_Mons'\n"


def test_jobs_title_line_is_never_wrapped(tmp_path: Path) -> None:
    deep = tmp_path / ("long-directory-name-" * 8)
    deep.mkdir()
    path = deep / "none.yaml"
    path.write_text("jobs: {}\n")
    result = run("jobs", "-f", path)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == f"0 jobs in {path}"


def test_tables_line_up_on_screen_and_never_wrap(capsys: pytest.CaptureFixture[str]) -> None:
    from rich.cells import cell_len

    from scheduler.cli_common import print_table

    long = "x" * 300
    print_table("2 jobs", ["job", "description"], [["nightly", long], ["日報", "short"]])
    title, *lines = capsys.readouterr().out.splitlines()
    assert title == "2 jobs"
    assert len(lines) == 6  # top, header, rule, two rows, bottom: nothing wrapped
    assert len({cell_len(line) for line in lines}) == 1  # every line as wide on screen
    assert long in lines[3] and "日報" in lines[4]
