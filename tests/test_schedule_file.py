"""schedules.yaml loading: every rejection of SPEC §3 with its exact position, and good files.

Each file in tests/data/bad/ holds one mistake (a few hold several); BAD_FILES below lists,
for each, the exact (line, col, path) of every problem and a part of its message. Columns
are 1-based characters, as editors show them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from scheduler.errors import Problem, ScheduleError
from scheduler.schedule_file import load_schedule, read_timezone
from scheduler.spec import JobSpec, Misfire, Overlap, RetryPolicy, ScheduleFile
from scheduler.timeengine.ticks import EPOCH, AtSchedule, CronSchedule, EverySchedule

DATA = Path(__file__).parent / "data"
BAD = DATA / "bad"

# The tasks the jobs package registers (scheduler.celery_app.registered_tasks).
TASKS = frozenset(
    {
        "jobs.health.ping",
        "jobs.reports.build_report",
        "jobs.notify.announce",
        "jobs.demo.fail",
        "jobs.demo.slow",
        "jobs.demo.noop",
    }
)
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")

REFUSED_TAG = "tags that build objects are refused"
NOT_DURATION = "is not a duration (use 45s, 5m, 1h30m, 2d, 500ms or a number of seconds)"
SOFT_LIMIT = "must be less than time_limit"
BAD_NAME = "job names may only contain letters, digits, '-', '_' and '.'"
NEEDS_KIND = "needs one of cron, every or at"

# file -> every problem as (line, col, path, part of the message), in the order reported.
BAD_FILES: dict[str, list[tuple[int, int, str, str]]] = {
    # Unknown keys, with a suggestion for a near miss.
    "unknown_key_top.yaml": [
        (1, 1, "timezon", "unknown top-level key 'timezon' (did you mean 'timezone'?)"),
    ],
    "job_field_at_top.yaml": [
        (2, 1, "cron", "unknown top-level key 'cron' (job fields belong under `jobs: <name>:`)"),
    ],
    "unknown_key_job.yaml": [
        (2, 3, "jobs.nightly", NEEDS_KIND),
        (4, 5, "jobs.nightly.crn", "unknown key 'crn' (did you mean 'cron'?)"),
    ],
    "unknown_key_defaults.yaml": [
        (2, 3, "defaults.queu", "unknown key 'queu' (did you mean 'queue'?)"),
    ],
    "unknown_key_retry.yaml": [
        (5, 21, "jobs.nightly.retry.backof", "unknown key 'backof' (did you mean 'backoff'?)"),
    ],
    "history_invalid.yaml": [
        (2, 9, "history.keep", "must be a positive duration, got 0"),
        (3, 3, "history.kep", "unknown key 'kep' (did you mean 'keep'?)"),
    ],
    # Duplicate keys at every level: YAML would silently keep the last one.
    "duplicate_top.yaml": [
        (3, 1, "timezone", "duplicate key 'timezone' (first defined on line 1)"),
    ],
    "duplicate_job.yaml": [
        (5, 3, "jobs.heartbeat", "duplicate key 'heartbeat' (first defined on line 2)"),
    ],
    "duplicate_field.yaml": [
        (6, 5, "jobs.heartbeat.queue", "duplicate key 'queue' (first defined on line 5)"),
    ],
    "duplicate_kwargs.yaml": [
        (7, 7, "jobs.nightly.kwargs", "duplicate key 'format'"),
    ],
    "duplicate_after_merge.yaml": [
        (9, 5, "jobs.copy.queue", "duplicate key 'queue' (first defined on line 8)"),
    ],
    # Timezones.
    "timezone_unknown.yaml": [
        (1, 11, "timezone", "unknown timezone 'Europe/Londn' (did you mean 'Europe/London'?)"),
        (
            6,
            15,
            "jobs.nightly.timezone",
            "unknown timezone 'America/New_Yrok' (did you mean 'America/New_York'?)",
        ),
    ],
    # Cron: the column is that of the bad character inside the expression.
    "cron_plain.yaml": [  # cron: 0 */0 * * *  -> the 0 after */
        (4, 15, "jobs.nightly.cron", "step 0 in hour must be at least 1"),
    ],
    "cron_double_quoted.yaml": [  # cron: "0 2 * * mon-fry"  -> the f of fry
        (4, 24, "jobs.nightly.cron", "'fry' is not a day-of-week"),
    ],
    "cron_single_quoted.yaml": [  # cron: '61 2 * * *'  -> the 6, not the quote
        (4, 12, "jobs.nightly.cron", "minute 61 is out of range 0-59"),
    ],
    "cron_field_count.yaml": [
        (4, 19, "jobs.nightly.cron", "expected 5 fields"),
    ],
    # Tasks.
    "task_unknown.yaml": [
        (
            3,
            11,
            "jobs.nightly.task",
            "task 'jobs.reports.build_reprot' is not registered from the jobs package "
            "(did you mean 'jobs.reports.build_report'?)",
        ),
    ],
    "task_missing.yaml": [
        (2, 3, "jobs.nightly.task", "missing: every job needs a task"),
    ],
    # Durations.
    "duration_zero.yaml": [
        (5, 13, "jobs.nightly.jitter", "must be a positive duration, got 0"),
        (6, 14, "jobs.nightly.expires", "must be a positive duration, got 0s"),
    ],
    "duration_negative.yaml": [
        (5, 17, "jobs.nightly.time_limit", "must be a positive duration, got -5"),
        (6, 20, "jobs.nightly.misfire_grace", "must be a positive duration, got -1.5"),
        (7, 14, "jobs.nightly.expires", f"'-5s' {NOT_DURATION}"),
    ],
    "duration_malformed.yaml": [
        (5, 15, "jobs.nightly.jitter", f"'1h30x' {NOT_DURATION}"),  # at "30x"
        (6, 17, "jobs.nightly.expires", f"'1h30x' {NOT_DURATION}"),  # quoted: still at "30x"
        (7, 17, "jobs.nightly.time_limit", f"'5 minutes' {NOT_DURATION}"),
    ],
    "every_too_short.yaml": [
        (4, 12, "jobs.fast.every", "must be at least 1s, got 500ms"),
        (7, 12, "jobs.faster.every", "must be at least 1s, got 0.5"),
    ],
    "overflow.yaml": [
        (4, 12, "jobs.heartbeat.every", "1e400 is not a duration"),
        (5, 13, "jobs.heartbeat.jitter", "99999999999d is too long for a duration"),
        (6, 17, "jobs.heartbeat.kwargs", "1e400 cannot be sent as JSON"),
        (9, 9, "jobs.launch.at", "is out of range in America/New_York"),
    ],
    # Relations between fields name one specific field.
    "soft_time_limit.yaml": [
        (5, 22, "jobs.nightly.soft_time_limit", SOFT_LIMIT),
    ],
    "soft_time_limit_from_defaults.yaml": [  # reported where it is written, for `short`
        (2, 20, "jobs.short.soft_time_limit", SOFT_LIMIT),
    ],
    "start_after_end.yaml": [
        (6, 10, "jobs.nightly.end", "must be after start (start is inclusive, end exclusive)"),
    ],
    "start_equals_end_offset.yaml": [
        (8, 10, "jobs.nightly.end", "must be after start"),
    ],
    "retry_backoff.yaml": [
        (5, 48, "jobs.nightly.retry.backoff_max", "must not be less than backoff"),
    ],
    # Types and allowed values.
    "wrong_types.yaml": [
        (5, 15, "jobs.nightly.priority", "expected an integer, got a string ('5')"),
        (6, 12, "jobs.nightly.queue", "expected a string, got a list"),
        (7, 14, "jobs.nightly.enabled", "expected true or false, got a string ('yes')"),
        (8, 11, "jobs.nightly.args", "expected a list, got a string ('daily')"),
        (9, 13, "jobs.nightly.kwargs", "expected a mapping, got a list"),
        (10, 18, "jobs.nightly.description", "expected a string, got an integer ('42')"),
        (11, 12, "jobs.nightly.retry", "expected a mapping, got an integer ('3')"),
    ],
    "out_of_range.yaml": [
        (5, 15, "jobs.nightly.priority", "10 is out of range (0-9)"),
        (6, 18, "jobs.nightly.retry.max", "-1 is out of range (0-1000)"),
        (7, 14, "jobs.nightly.misfire", "'run-once' is not one of skip, run_once, run_all"),
        (8, 14, "jobs.nightly.overlap", "'never' is not one of allow, forbid"),
    ],
    "explicit_tags_bad_values.yaml": [
        (5, 15, "jobs.nightly.priority", "'abc' is not an integer"),
        (6, 14, "jobs.nightly.enabled", "expected true or false, got 'maybe'"),
        (7, 13, "jobs.nightly.jitter", "'abc' is not a number of seconds"),
    ],
    "at_invalid.yaml": [
        (4, 9, "jobs.launch.at", "'next tuesday' is not an ISO 8601 date-time"),
        (7, 9, "jobs.launch-2.at", "'2026-13-01T09:00' is not an ISO 8601 date-time"),
    ],
    "notify_invalid.yaml": [
        (5, 27, "jobs.nightly.notify.on", "'exploded' is not a run status"),
        (5, 47, "jobs.nightly.notify.webhook", "'ftp://example.com/hook' is not an http(s) URL"),
        (9, 13, "jobs.heartbeat.notify.webhook", "missing: notify needs a webhook URL"),
    ],
    # Schedule kinds: a second one names the second; none names the job.
    "two_kinds.yaml": [
        (5, 5, "jobs.x.every", "only one of cron, every, at per job; this job already has cron"),
    ],
    "three_kinds.yaml": [
        (5, 5, "jobs.x.cron", "this job already has at"),
        (6, 5, "jobs.x.every", "this job already has at"),
    ],
    "no_kind.yaml": [
        (2, 3, "jobs.x", NEEDS_KIND),
    ],
    # Tags that would construct Python objects (or anything but plain YAML types).
    "tag_python_object_apply.yaml": [
        (
            6,
            11,
            "jobs.evil.args",
            f"tag !!python/object/apply:os.system is not allowed ({REFUSED_TAG})",
        ),
    ],
    "tag_python_name.yaml": [
        (3, 11, "jobs.evil.task", "tag !!python/name:os.system is not allowed"),
    ],
    "tag_custom.yaml": [
        (2, 9, "jobs.evil", "tag !foo is not allowed"),
        (5, 12, "jobs.evil.queue", "tag !bar is not allowed"),
    ],
    "tag_root.yaml": [
        (1, 5, "", "tag !!python/object/new:os.system is not allowed"),
    ],
    "tag_in_kwargs.yaml": [
        (
            5,
            19,
            "jobs.evil.kwargs",
            "tag !!python/object/apply:subprocess.check_output is not allowed",
        ),
    ],
    # Alias bombs and nesting: refused from parser events, before anything is expanded.
    "billion_laughs.yaml": [  # at the first *d: the expansion passes 10,000 nodes there
        (5, 8, "", "alias *d expands the document past 10,000 nodes (alias expansion bomb?)"),
    ],
    "merge_bomb.yaml": [
        (5, 31, "", "alias *c expands the document past 10,000 nodes"),
    ],
    "recursive_alias.yaml": [
        (5, 21, "", "alias *jobs refers to itself (recursive alias)"),
    ],
    "too_deep.yaml": [
        (2, 58, "", "nested deeper than 50 levels"),
    ],
    # Problems of the whole file.
    "empty.yaml": [
        (0, 0, "", "file is empty (a schedule needs at least `jobs: {}`)"),
    ],
    "comment_only.yaml": [
        (0, 0, "", "file is empty"),
    ],
    "not_utf8.yaml": [  # "Caf\xc3\xa9 r\xe9port": the Latin-1 é is the 24th character
        (5, 24, "", "file is not valid UTF-8 (byte 0xe9)"),
    ],
    "control_char.yaml": [
        (3, 36, "", "YAML syntax: character #x0000 is not allowed"),
    ],
    "syntax_unquoted_star.yaml": [  # cron: * * * * *  reads as an alias
        (4, 12, "", "YAML syntax: while scanning an alias"),
    ],
    "syntax_unclosed.yaml": [
        (6, 1, "", "YAML syntax: while parsing a flow sequence expected ',' or ']'"),
    ],
    "multiple_documents.yaml": [
        (2, 1, "", "expected a single document in the stream but found another document"),
    ],
    "top_not_mapping.yaml": [
        (1, 1, "", "the top level must be a mapping with `jobs:`, got a list"),
    ],
    "missing_jobs.yaml": [
        (1, 1, "jobs", "missing: a schedule needs `jobs:` (use `jobs: {}` for none)"),
    ],
    "jobs_not_mapping.yaml": [
        (1, 1, "jobs", "expected a mapping of job names to jobs, got a list"),
    ],
    "jobs_null.yaml": [
        (2, 1, "jobs", "expected a mapping of job names to jobs, got null"),
    ],
    # Jobs and defaults.
    "job_not_mapping.yaml": [
        (2, 14, "jobs.heartbeat", "expected a mapping of job fields, got a string"),
    ],
    "defaults_task_cron.yaml": [
        (2, 3, "defaults.task", "'task' cannot be set in defaults"),
        (3, 3, "defaults.cron", "'cron' cannot be set in defaults"),
    ],
    "bad_job_names.yaml": [
        (2, 3, "jobs.nightly report", BAD_NAME),
        (5, 3, "jobs.reports/daily", BAD_NAME),
        (8, 3, "jobs.", BAD_NAME),
    ],
    "key_not_scalar.yaml": [
        (5, 5, "jobs.heartbeat", "keys must be plain names, not lists or mappings"),
    ],
    "merge_not_mapping.yaml": [
        (3, 9, "jobs.heartbeat", "a merge key (<<) needs a mapping or a list of mappings"),
    ],
    # Every problem is reported, sorted by position, whatever order they were found in.
    "many_problems.yaml": [
        (2, 3, "jobs.nightly", NEEDS_KIND),
        (3, 11, "jobs.nightly.task", "(did you mean 'jobs.reports.build_report'?)"),
        (4, 5, "jobs.nightly.crn", "(did you mean 'cron'?)"),
        (5, 22, "jobs.nightly.soft_time_limit", SOFT_LIMIT),
        (9, 12, "jobs.heartbeat.every", "must be a positive duration, got 0s"),
        (10, 15, "jobs.heartbeat.priority", "expected an integer, got a string ('high')"),
        (11, 3, "jobs.heartbeat", "duplicate key 'heartbeat' (first defined on line 7)"),
        (14, 11, "timezone", "unknown timezone 'Mars/Olympus_Mons'"),
        (16, 3, "defaults.cron", "'cron' cannot be set in defaults"),
        (17, 12, "defaults.overlap", "'sometimes' is not one of allow, forbid"),
    ],
}


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(ScheduleError) as info:
        load_schedule(path, TASKS)
    return list(info.value.problems)


def write(tmp_path: Path, text: str, name: str = "schedules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_text(tmp_path: Path, text: str, default_tz: ZoneInfo | None = None) -> ScheduleFile:
    return load_schedule(write(tmp_path, text), TASKS, default_tz)


# --- the corpus of bad files ------------------------------------------------------------


def test_every_bad_file_has_expectations() -> None:
    assert sorted(p.name for p in BAD.iterdir()) == sorted(BAD_FILES)


@pytest.mark.parametrize(("name", "expected"), BAD_FILES.items(), ids=list(BAD_FILES))
def test_bad_file(name: str, expected: list[tuple[int, int, str, str]]) -> None:
    path = BAD / name
    problems = problems_of(path)
    assert [(p.line, p.col, p.path) for p in problems] == [e[:3] for e in expected]
    for problem, (*_, message) in zip(problems, expected, strict=True):
        assert message in problem.message
        assert problem.file == str(path)


def test_many_problems_are_all_reported_sorted_by_line() -> None:
    problems = problems_of(BAD / "many_problems.yaml")
    assert len(problems) >= 5
    lines = [p.line for p in problems]
    assert lines == sorted(lines)
    # Found out of order: jobs come first in the file but are checked after timezone/defaults.
    assert {p.path.split(".")[0] for p in problems} == {"jobs", "timezone", "defaults"}


def test_problem_and_error_text() -> None:
    path = BAD / "timezone_unknown.yaml"
    with pytest.raises(ScheduleError) as info:
        load_schedule(path, TASKS)
    lines = [
        f"{path}:1:11: timezone: unknown timezone 'Europe/Londn' (did you mean 'Europe/London'?)",
        f"{path}:6:15: jobs.nightly.timezone: unknown timezone 'America/New_Yrok' "
        "(did you mean 'America/New_York'?)",
    ]
    assert [str(p) for p in info.value.problems] == lines
    assert str(info.value) == "\n".join(lines)


def test_whole_file_problem_text() -> None:
    path = BAD / "empty.yaml"
    [problem] = problems_of(path)
    assert str(problem) == f"{path}: file is empty (a schedule needs at least `jobs: {{}}`)"
    [problem] = problems_of(BAD / "billion_laughs.yaml")
    assert str(problem).startswith(f"{BAD / 'billion_laughs.yaml'}:5:8: alias *d expands")


# --- nothing is constructed from tags ------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["tag_python_object_apply.yaml", "tag_in_kwargs.yaml", "tag_root.yaml"]
)
def test_python_tags_run_nothing(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []

    def record(*args: object, **kwargs: object) -> int:
        calls.append(args)
        return 0

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(os, "system", record)
    monkeypatch.setattr(subprocess, "check_output", record)
    with pytest.raises(ScheduleError) as info:
        load_schedule(BAD / name, TASKS)
    assert "is not allowed" in str(info.value)
    assert calls == []
    assert not (tmp_path / "pwned-by-yaml").exists()


def test_custom_tag_on_a_job_mapping_is_not_ignored(tmp_path: Path) -> None:
    # The job itself is otherwise valid: only the tag makes the file invalid.
    text = "jobs:\n  ok: !Job\n    task: jobs.health.ping\n    every: 1m\n"
    [problem] = problems_of(write(tmp_path, text))
    assert (problem.line, problem.col, problem.path) == (2, 7, "jobs.ok")
    assert "tag !Job is not allowed" in problem.message


def test_tag_on_a_key_is_refused(tmp_path: Path) -> None:
    text = "jobs:\n  ok:\n    !foo task: jobs.health.ping\n    every: 1m\n"
    [problem] = problems_of(write(tmp_path, text))
    assert (problem.line, problem.col, problem.path) == (3, 5, "jobs.ok.task")
    assert "tag !foo is not allowed" in problem.message


def test_plain_tags_are_allowed(tmp_path: Path) -> None:
    text = "jobs:\n  ok:\n    task: !!str jobs.health.ping\n    every: !!int 60\n"
    job = load_text(tmp_path, text).jobs["ok"]
    assert job.schedule == EverySchedule(timedelta(seconds=60), EPOCH)


# --- bombs and large files: rejected quickly ---------------------------------------------


@pytest.mark.parametrize("name", ["billion_laughs.yaml", "merge_bomb.yaml"])
def test_alias_bombs_are_rejected_quickly(name: str) -> None:
    started = time.perf_counter()
    [problem] = problems_of(BAD / name)
    elapsed = time.perf_counter() - started
    assert "expands the document past 10,000 nodes (alias expansion bomb?)" in problem.message
    assert elapsed < 0.25, f"took {elapsed:.3f}s"


def test_aliases_within_the_limit_are_fine(tmp_path: Path) -> None:
    items = ", ".join(["x"] * 50)
    text = (
        f"jobs:\n  a:\n    task: jobs.demo.noop\n    every: 1m\n    args: &items [{items}]\n"
        + "".join(
            f"  j{i}:\n    task: jobs.demo.noop\n    every: 1m\n    args: *items\n"
            for i in range(20)
        )
    )
    schedule = load_text(tmp_path, text)
    assert schedule.jobs["j19"].args == ("x",) * 50


def test_a_large_schedule_without_aliases_is_bounded_by_file_size_only(tmp_path: Path) -> None:
    # 3,000 jobs are ~15,000 nodes: the node limit is for what aliases add, not what is written.
    text = "jobs:\n" + "".join(
        f"  j{i}: {{task: jobs.demo.noop, every: 1m}}\n" for i in range(3000)
    )
    assert len(load_text(tmp_path, text).jobs) == 3000


def test_merging_a_defaults_anchor_into_every_job_is_not_a_bomb(tmp_path: Path) -> None:
    # Each merge adds the anchor's 11 nodes: 2,000 jobs expand to ~40,000 nodes, 2.5x written.
    text = (
        "defaults: &d {queue: celery, priority: 3, overlap: allow, misfire: skip, jitter: 5s}\n"
        "jobs:\n"
        + "".join(f"  j{i}: {{<<: *d, task: jobs.demo.noop, every: 1m}}\n" for i in range(2000))
    )
    schedule = load_text(tmp_path, text)
    assert schedule.jobs["j1999"].priority == 3


def test_expansion_is_capped_relative_to_the_written_size(tmp_path: Path) -> None:
    # 2,000 written nodes may expand to 20,000 and no more: 11 aliases of a 2,000-node list.
    items = ", ".join(["1"] * 2000)
    text = f"jobs: {{}}\nbig: &b [{items}]\nmore: [{', '.join(['*b'] * 11)}]\n"
    [problem] = problems_of(write(tmp_path, text))
    assert (problem.line, problem.path) == (3, "")
    assert problem.message.startswith("alias *b expands the document past 20,")


def _refuse_reading(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """Make any attempt to open or read `path` fail the test."""
    real_open = open
    real_path_open = Path.open

    def guarded_open(file: object, *args: object, **kwargs: object) -> object:
        if Path(os.fsdecode(file)).resolve() == path.resolve():  # type: ignore[arg-type]
            raise AssertionError(f"{path} was opened")
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    def guarded_path_open(self: Path, *args: object, **kwargs: object) -> object:
        if self.resolve() == path.resolve():
            raise AssertionError(f"{path} was opened")
        return real_path_open(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("builtins.open", guarded_open)
    monkeypatch.setattr(Path, "open", guarded_path_open)
    monkeypatch.setattr(Path, "read_bytes", guarded_path_open)
    monkeypatch.setattr(Path, "read_text", guarded_path_open)


def test_file_over_1_mib_is_rejected_quickly_and_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "huge.yaml"
    chunk = b"# padding " + b"x" * (1024 * 1024 - 11) + b"\n"
    with path.open("wb") as stream:
        stream.write(b"jobs: {}\n")
        for _ in range(50):
            stream.write(chunk)
    size = path.stat().st_size
    assert size > 50_000_000
    _refuse_reading(monkeypatch, path)
    started = time.perf_counter()
    [problem] = problems_of(path)
    elapsed = time.perf_counter() - started
    assert (problem.line, problem.col, problem.path) == (0, 0, "")
    assert problem.message == f"file is {size:,} bytes, over the 1 MiB limit for a schedule"
    assert elapsed < 0.1, f"took {elapsed:.3f}s"


def test_the_file_size_limit_can_be_raised(tmp_path: Path) -> None:
    text = "jobs:\n" + "".join(
        f"  j{i}: {{task: jobs.demo.noop, every: 1m}}\n" for i in range(40_000)
    )
    path = write(tmp_path, text)
    size = path.stat().st_size
    assert size > 1 << 20
    [problem] = problems_of(path)
    assert "over the 1 MiB limit" in problem.message
    assert len(load_schedule(path, TASKS, max_bytes=4 << 20).jobs) == 40_000
    with pytest.raises(ScheduleError) as refused:
        load_schedule(path, TASKS, max_bytes=size - 1)
    assert refused.value.problems[0].message == (
        f"file is {size:,} bytes, over the {size - 1:,} bytes limit for a schedule "
        "(SCHEDULER_MAX_SCHEDULE_BYTES)"
    )


def test_1_mib_is_the_limit(tmp_path: Path) -> None:
    head = b"jobs: {}\n# "
    path = tmp_path / "limit.yaml"
    path.write_bytes(head + b"x" * (1024 * 1024 - len(head) - 1) + b"\n")
    assert load_schedule(path, TASKS).jobs == {}
    with path.open("ab") as stream:
        stream.write(b"\n")
    [problem] = problems_of(path)
    assert "1,048,577 bytes, over the 1 MiB limit" in problem.message


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_endless_device_is_not_read_to_the_end() -> None:
    # /dev/zero reports a size of 0: the size check alone would read it until memory ran out.
    # A child process with capped memory, so that a regression fails instead of swapping.
    code = (
        "from scheduler.schedule_file import load_schedule\n"
        "from scheduler.errors import ScheduleError\n"
        "try:\n"
        "    load_schedule('/dev/zero', set())\n"
        "except ScheduleError as exc:\n"
        "    print(exc)\n"
    )

    def cap_memory() -> None:
        import resource  # POSIX only, like /dev/zero

        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=cap_memory,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "/dev/zero: file is over the 1 MiB limit for a schedule\n"


def test_missing_file_and_directory(tmp_path: Path) -> None:
    [problem] = problems_of(tmp_path / "nope.yaml")
    assert str(problem) == f"{tmp_path / 'nope.yaml'}: file not found"
    [problem] = problems_of(tmp_path)
    assert problem.message == "is a directory, not a schedule file"


def test_not_utf8_column_counts_characters_after_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfjobs: {}\n\xc3\xa9\xe9: 1\n")
    [problem] = problems_of(path)
    assert (problem.line, problem.col) == (2, 2)
    path.write_bytes(b"\xef\xbb\xbf\xc3\xa9\xff: 1\njobs: {}\n")
    [problem] = problems_of(path)
    assert (problem.line, problem.col) == (1, 2)


def test_utf16_file_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "utf16.yaml"
    path.write_bytes("jobs: {}\n".encode("utf-16"))
    [problem] = problems_of(path)
    assert (problem.line, problem.col) == (1, 1)
    assert problem.message == "file is not valid UTF-8 (byte 0xff)"


# --- good files ----------------------------------------------------------------------------


def test_spec_example_loads_with_typed_values() -> None:
    schedule = load_schedule(DATA / "good" / "spec_example.yaml", TASKS)
    assert schedule.tz == LONDON
    assert schedule.history_keep is None
    assert list(schedule.jobs) == ["nightly-report", "heartbeat", "launch-mail"]

    nightly = schedule.jobs["nightly-report"]
    assert nightly.task == "jobs.reports.build_report"
    assert isinstance(nightly.schedule, CronSchedule)
    assert nightly.schedule.expr.text == "0 2 * * *"
    assert nightly.schedule.tz == NEW_YORK
    assert nightly.tz == NEW_YORK
    assert nightly.args == ("daily",)
    assert nightly.kwargs == {"format": "pdf"}
    assert nightly.queue == "reports"  # the job's own value wins over defaults
    assert nightly.priority == 5
    assert nightly.enabled is True
    assert nightly.misfire is Misfire.RUN_ONCE
    assert nightly.misfire_grace == timedelta(seconds=60)
    assert nightly.overlap is Overlap.FORBID
    assert nightly.jitter == timedelta(seconds=30)
    assert nightly.expires == timedelta(hours=1)
    assert nightly.time_limit == timedelta(minutes=10)
    assert nightly.soft_time_limit == timedelta(minutes=9)
    assert nightly.retry == RetryPolicy(3, timedelta(seconds=30), timedelta(minutes=10))
    # Naive start/end are wall-clock times of the job's timezone (EST, UTC-5).
    assert nightly.start_at == datetime(2026, 1, 1, 5, 0, tzinfo=UTC)
    assert nightly.end_at == datetime(2027, 1, 1, 5, 0, tzinfo=UTC)
    assert nightly.description == "Daily PDF report for the sales team"
    assert nightly.line == 8
    # The first tick is the first 02:00 New York time inside the window.
    first = nightly.next_ticks(datetime(2025, 6, 1, tzinfo=UTC), 1)
    assert first == [datetime(2026, 1, 1, 7, 0, tzinfo=UTC)]

    heartbeat = schedule.jobs["heartbeat"]
    assert heartbeat.schedule == EverySchedule(timedelta(seconds=30), EPOCH)
    assert heartbeat.tz == LONDON  # the file's timezone
    assert heartbeat.queue == "default"  # from defaults
    assert heartbeat.misfire is Misfire.RUN_ONCE
    assert heartbeat.overlap is Overlap.FORBID
    assert heartbeat.args == ()
    assert heartbeat.kwargs == {}
    assert heartbeat.priority is None
    assert heartbeat.retry is None
    assert heartbeat.start_at is None and heartbeat.end_at is None

    launch = schedule.jobs["launch-mail"]
    # 2026-12-01 09:00 in London is GMT, UTC+0.
    assert launch.schedule == AtSchedule(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    assert launch.tz == LONDON
    assert launch.queue == "default"


def test_defaults_apply_and_jobs_override_them(tmp_path: Path) -> None:
    text = """\
timezone: UTC
defaults:
  queue: default
  priority: 3
  misfire: skip
  overlap: allow
  misfire_grace: 5m
  time_limit: 10m
  retry: {max: 2, backoff: 10s}
  timezone: Asia/Tokyo
  notify: {webhook: "https://hooks.example.com/x"}
  enabled: false
jobs:
  inherits:
    task: jobs.demo.noop
    cron: "0 9 * * *"
  overrides:
    task: jobs.demo.noop
    cron: "0 9 * * *"
    queue: fast
    priority: 7
    misfire: run_all
    overlap: forbid
    misfire_grace: 30s
    time_limit: 1h
    retry: {max: 5}
    timezone: Europe/London
    notify: {on: [failed], webhook: "https://hooks.example.com/y"}
    enabled: true
"""
    jobs = load_text(tmp_path, text).jobs
    inherits, overrides = jobs["inherits"], jobs["overrides"]
    assert inherits.queue == "default"
    assert inherits.priority == 3
    assert inherits.misfire is Misfire.SKIP
    assert inherits.overlap is Overlap.ALLOW
    assert inherits.misfire_grace == timedelta(minutes=5)
    assert inherits.time_limit == timedelta(minutes=10)
    assert inherits.retry == RetryPolicy(2, timedelta(seconds=10), None)
    assert inherits.tz == ZoneInfo("Asia/Tokyo")
    assert isinstance(inherits.schedule, CronSchedule)
    assert inherits.schedule.tz == ZoneInfo("Asia/Tokyo")
    assert inherits.notify is not None
    assert inherits.notify.webhook == "https://hooks.example.com/x"
    assert inherits.notify.on == ("failed", "timed_out", "lost", "missed")
    assert inherits.enabled is False

    assert overrides.queue == "fast"
    assert overrides.priority == 7
    assert overrides.misfire is Misfire.RUN_ALL
    assert overrides.overlap is Overlap.FORBID
    assert overrides.misfire_grace == timedelta(seconds=30)
    assert overrides.time_limit == timedelta(hours=1)
    # A nested mapping replaces the default one whole; an unset `max` means 3.
    assert overrides.retry == RetryPolicy(5, None, None)
    assert overrides.tz == LONDON
    assert overrides.notify is not None
    assert overrides.notify.on == ("failed",)
    assert overrides.enabled is True


def test_default_timezone_argument_and_its_overrides(tmp_path: Path) -> None:
    job = "jobs:\n  j:\n    task: jobs.demo.noop\n    at: 2026-07-01T09:00\n"
    no_tz = load_text(tmp_path, job, default_tz=NEW_YORK)
    assert no_tz.tz == NEW_YORK
    assert no_tz.jobs["j"].schedule == AtSchedule(datetime(2026, 7, 1, 13, 0, tzinfo=UTC))
    assert load_text(tmp_path, job).tz == ZoneInfo("UTC")  # no argument: UTC
    with_tz = load_text(tmp_path, "timezone: Europe/London\n" + job, default_tz=NEW_YORK)
    assert with_tz.jobs["j"].schedule == AtSchedule(datetime(2026, 7, 1, 8, 0, tzinfo=UTC))


# Europe/London 2026: 01:00 -> 02:00 on 29 March; 02:00 -> 01:00 on 25 October.
@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2026-07-01T09:00", "2026-07-01T08:00:00+00:00"),  # BST
        ("2026-12-01T09:00", "2026-12-01T09:00:00+00:00"),  # GMT
        ("2026-03-29T01:30", "2026-03-29T01:00:00+00:00"),  # in the gap: first instant after
        ("2026-10-25T01:30", "2026-10-25T00:30:00+00:00"),  # repeated: first pass (BST)
        ("2026-07-01T09:00:00+02:00", "2026-07-01T07:00:00+00:00"),  # an offset wins
        ("2026-07-01T09:00:00Z", "2026-07-01T09:00:00+00:00"),  # a YAML timestamp with Z
        ("2026-07-01 09:00:00", "2026-07-01T08:00:00+00:00"),  # a YAML timestamp, naive
        ("2026-07-01", "2026-06-30T23:00:00+00:00"),  # a date: midnight, local
        ('"2026-07-01T09:00"', "2026-07-01T08:00:00+00:00"),  # quoted
    ],
)
def test_at_is_resolved_in_the_job_timezone(tmp_path: Path, written: str, expected: str) -> None:
    text = f"timezone: Europe/London\njobs:\n  j:\n    task: jobs.demo.noop\n    at: {written}\n"
    schedule = load_text(tmp_path, text).jobs["j"].schedule
    assert isinstance(schedule, AtSchedule)
    assert schedule.at.isoformat() == expected


def test_start_end_resolved_from_job_timezone_and_anchor_every(tmp_path: Path) -> None:
    text = """\
timezone: Europe/London
defaults:
  start: 2026-03-08T02:30         # inside New York's spring-forward gap
jobs:
  ny:
    task: jobs.demo.noop
    every: 1h
    timezone: America/New_York
    end: 2026-11-01T01:30         # repeated in New York: first pass (EDT)
  london:
    task: jobs.demo.noop
    every: 1h
    end: 2026-12-31T23:00:00-05:00
"""
    jobs = load_text(tmp_path, text).jobs
    ny, london = jobs["ny"], jobs["london"]
    assert ny.start_at == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT
    assert ny.end_at == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    # `every` is anchored at start, so the ticks sit on its grid.
    assert ny.schedule == EverySchedule(timedelta(hours=1), ny.start_at)
    assert london.start_at == datetime(2026, 3, 8, 2, 30, tzinfo=UTC)
    assert london.end_at == datetime(2027, 1, 1, 4, 0, tzinfo=UTC)
    for job in (ny, london):
        assert job.start_at is not None and job.start_at.tzinfo is UTC
        assert job.end_at is not None and job.end_at.tzinfo is UTC


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        ("45s", 45),
        ("5m", 300),
        ("1h30m", 5400),
        ("2d", 172_800),
        ("500ms", 0.5),
        ("1d2h3m4s", 93_784),
        ("1.5h", 5400),
        ("90", 90),
        ("1.5", 1.5),
        ('"45s"', 45),
    ],
)
def test_durations(tmp_path: Path, written: str, seconds: float) -> None:
    text = f"jobs:\n  j:\n    task: jobs.demo.noop\n    every: 1h\n    time_limit: {written}\n"
    assert load_text(tmp_path, text).jobs["j"].time_limit == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("written", "seconds"), [("1s", 1), ("1", 1), ("1.5", 1.5), ("2d", 172_800)]
)
def test_every_of_one_second_or_more(tmp_path: Path, written: str, seconds: float) -> None:
    text = f"jobs:\n  j:\n    task: jobs.demo.noop\n    every: {written}\n"
    schedule = load_text(tmp_path, text).jobs["j"].schedule
    assert schedule == EverySchedule(timedelta(seconds=seconds), EPOCH)


def test_duration_rounding_to_zero_is_not_positive(tmp_path: Path) -> None:
    text = "jobs:\n  j:\n    task: jobs.demo.noop\n    every: 1m\n    jitter: 0.0000001\n"
    [problem] = problems_of(write(tmp_path, text))
    assert problem.path == "jobs.j.jitter"
    assert "must be a positive duration" in problem.message


def test_h_is_stable_and_hashed_from_the_job_name(tmp_path: Path) -> None:
    names = [f"job-{i}" for i in range(20)]
    body = "".join(f'  {n}:\n    task: jobs.demo.noop\n    cron: "H H * * *"\n' for n in names)
    first = load_text(tmp_path, "jobs:\n" + body).jobs
    # The same job names in another order, next to another job: the same minutes and hours.
    extra = '  other:\n    task: jobs.demo.noop\n    cron: "H H * * *"\n'
    reordered = "".join(
        f'  {n}:\n    task: jobs.demo.noop\n    cron: "H H * * *"\n' for n in reversed(names)
    )
    second = load_text(tmp_path, "jobs:\n" + extra + reordered).jobs

    def fields(job: JobSpec) -> tuple[str, ...]:
        assert isinstance(job.schedule, CronSchedule)
        return job.schedule.expr.fields

    for name in names:
        assert fields(first[name]) == fields(second[name])
        minute, hour, *rest = fields(first[name])
        assert 0 <= int(minute) <= 59 and 0 <= int(hour) <= 23
        assert rest == ["*", "*", "*"]
    assert len({fields(job) for job in first.values()}) > 5  # spread, not all the same


def test_merge_keys_work_and_merged_keys_are_not_duplicates(tmp_path: Path) -> None:
    text = """\
jobs:
  base: &base
    task: jobs.reports.build_report
    cron: "0 2 * * *"
    queue: reports
    kwargs: &kw {format: pdf, pages: 3}
  copy:
    <<: *base
    queue: other               # overrides the merged queue: not a duplicate
    kwargs: {<<: *kw, pages: 4}
"""
    jobs = load_text(tmp_path, text).jobs
    copy = jobs["copy"]
    assert copy.task == "jobs.reports.build_report"
    assert isinstance(copy.schedule, CronSchedule)
    assert copy.schedule.expr.text == "0 2 * * *"
    assert copy.queue == "other"
    assert copy.kwargs == {"format": "pdf", "pages": 4}
    assert jobs["base"].queue == "reports"


def test_merge_sources_in_order(tmp_path: Path) -> None:
    text = """\
jobs:
  a: &a {task: jobs.demo.noop, every: 1m, queue: from-a}
  b: &b {task: jobs.demo.fail, every: 2m, queue: from-b, priority: 4}
  c:
    <<: [*a, *b]
    description: merged
"""
    c = load_text(tmp_path, text).jobs["c"]
    assert c.task == "jobs.demo.noop"
    assert c.queue == "from-a"
    assert c.priority == 4
    assert c.schedule == EverySchedule(timedelta(minutes=1), EPOCH)


def test_jobs_empty_is_valid(tmp_path: Path) -> None:
    schedule = load_text(tmp_path, "jobs: {}\n")
    assert schedule.jobs == {}
    assert schedule.tz == ZoneInfo("UTC")


def test_bom_and_history_and_notify(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    text = """\
history: {keep: 30d}
jobs:
  j:
    task: jobs.demo.noop
    every: 1m
    notify:
      on: [failed, missed]
      webhook: https://hooks.example.com/scheduler
"""
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    schedule = load_schedule(path, TASKS)
    assert schedule.history_keep == timedelta(days=30)
    notify = schedule.jobs["j"].notify
    assert notify is not None
    assert notify.on == ("failed", "missed")
    assert notify.webhook == "https://hooks.example.com/scheduler"


def test_args_and_kwargs_are_json_values(tmp_path: Path) -> None:
    text = """\
jobs:
  j:
    task: jobs.demo.noop
    every: 1m
    args: [1, 2.5, "three", true, null, [4], {five: 5}, 2026-01-01]
    kwargs: {nested: {list: [1, {deep: false}]}, "quoted key": -7, hex: 0x10}
"""
    job = load_text(tmp_path, text).jobs["j"]
    assert job.args == (1, 2.5, "three", True, None, [4], {"five": 5}, "2026-01-01")
    assert job.kwargs == {"nested": {"list": [1, {"deep": False}]}, "quoted key": -7, "hex": 16}


def test_shipped_schedule_is_valid() -> None:
    schedule = load_schedule(Path(__file__).parent.parent / "schedules.yaml", TASKS)
    assert "heartbeat" in schedule.jobs
    assert schedule.jobs["launch-mail"].enabled is False


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("timezone: Europe/London\njobs: {}\n", "Europe/London"),
        ("jobs:\n  a: {timezone: Asia/Tokyo, every: 1m}\ntimezone: Europe/Paris\n", "Europe/Paris"),
        ("jobs:\n  a: {timezone: Asia/Tokyo, every: 1m}\n", None),  # a job's, not the file's
        ("defaults: {queue: [a, b]}\ntimezone: 'America/New_York'\n", "America/New_York"),
        ("timezone: Mars/Olympus\n", None),
        ("timezone: [Europe/London]\n", None),
        ("timezone: UTC\njobs: {a: [\n", "UTC"),  # what follows is the loader's to report
        ("- timezone: UTC\n", None),
    ],
)
def test_read_timezone_reads_only_the_top_level_key(
    tmp_path: Path, text: str, zone: str | None
) -> None:
    assert read_timezone(write(tmp_path, text)) == zone
    assert read_timezone(tmp_path / "missing.yaml") is None
