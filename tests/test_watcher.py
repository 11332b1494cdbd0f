"""Live reload of the schedule file (SPEC §5): edits are noticed, bad edits keep the old one."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from scheduler.errors import ScheduleError
from scheduler.schedule_file import load_schedule
from scheduler.spec import ScheduleFile
from scheduler.watcher import ScheduleWatcher

KNOWN = frozenset({"jobs.health.ping", "jobs.demo.noop"})
ONE_JOB = "jobs:\n  ping:\n    task: jobs.health.ping\n    every: 30s\n"
TWO_JOBS = ONE_JOB + "  noop:\n    task: jobs.demo.noop\n    every: 1m\n"


class CountingLoad:
    """load_schedule, counting its calls (a poll of an unchanged file must not re-read it)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, path: Path) -> ScheduleFile:
        self.calls += 1
        return load_schedule(path, KNOWN)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "schedules.yaml"
    path.write_text(ONE_JOB)
    return path


@pytest.fixture
def load() -> CountingLoad:
    return CountingLoad()


@pytest.fixture
def watcher(path: Path, load: CountingLoad) -> ScheduleWatcher:
    watcher = ScheduleWatcher(path, load)
    assert set(watcher.load_initial().jobs) == {"ping"}
    return watcher


def bump_mtime(path: Path, seconds: int = 5) -> None:
    """Move the mtime on, as a later write would on a file system with coarse timestamps."""
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + seconds * 10**9))


def test_load_initial_raises_on_an_invalid_file(path: Path) -> None:
    path.write_text("jobs:\n  ping:\n    task: jobs.health.ping\n    cron: '61 * * * *'\n")
    with pytest.raises(ScheduleError, match=r"jobs\.ping\.cron"):
        ScheduleWatcher(path, CountingLoad()).load_initial()


def test_an_unchanged_file_is_not_reloaded(watcher: ScheduleWatcher, load: CountingLoad) -> None:
    assert watcher.poll() is None
    assert watcher.poll() is None
    assert load.calls == 1  # load_initial only


def test_an_in_place_edit_is_picked_up(
    watcher: ScheduleWatcher, path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scheduler.watcher")
    path.write_text(TWO_JOBS)
    bump_mtime(path)
    schedule = watcher.poll()
    assert schedule is not None
    assert set(schedule.jobs) == {"ping", "noop"}
    assert f"schedule file {path} reloaded: 2 jobs" in caplog.text
    assert watcher.poll() is None  # seen once


def test_an_in_place_edit_of_the_same_size_is_picked_up_by_its_mtime(
    watcher: ScheduleWatcher, path: Path
) -> None:
    edited = ONE_JOB.replace("every: 30s", "every: 45s")
    assert len(edited) == len(ONE_JOB)
    inode = os.stat(path).st_ino
    path.write_text(edited)
    bump_mtime(path)
    assert os.stat(path).st_ino == inode
    schedule = watcher.poll()
    assert schedule is not None
    assert schedule.jobs["ping"].schedule.interval.total_seconds() == 45  # type: ignore[union-attr]


def test_a_replacement_by_rename_is_picked_up_even_with_same_size_and_mtime(
    watcher: ScheduleWatcher, path: Path
) -> None:
    # What editors and Kubernetes ConfigMaps do; a coarse clock can leave the mtime equal.
    before = os.stat(path)
    replacement = path.with_name("schedules.yaml.tmp")
    replacement.write_text(ONE_JOB.replace("every: 30s", "every: 45s"))
    os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(replacement, path)
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    schedule = watcher.poll()
    assert schedule is not None
    assert schedule.jobs["ping"].schedule.interval.total_seconds() == 45  # type: ignore[union-attr]


def test_an_invalid_edit_is_logged_with_every_error_and_returns_none(
    watcher: ScheduleWatcher, path: Path, load: CountingLoad, caplog: pytest.LogCaptureFixture
) -> None:
    path.write_text(
        "jobs:\n  ping:\n    task: jobs.health.ping\n    cron: '61 * * * *'\n"
        "  other:\n    task: jobs.nope\n    every: 1m\n"
    )
    bump_mtime(path)
    with caplog.at_level(logging.ERROR, logger="scheduler.watcher"):
        assert watcher.poll() is None
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    message = record.getMessage()
    assert "is invalid; the last valid schedule keeps running" in message
    assert f"{path}:4:" in message and "jobs.ping.cron" in message
    assert f"{path}:6:" in message and "jobs.other.task" in message
    caplog.clear()
    assert watcher.poll() is None  # the same bad file is not reported again
    assert caplog.records == []
    assert load.calls == 2


def test_fixing_an_invalid_edit_reloads(watcher: ScheduleWatcher, path: Path) -> None:
    path.write_text("jobs: [")
    bump_mtime(path, 5)
    assert watcher.poll() is None
    path.write_text(TWO_JOBS)
    bump_mtime(path, 10)
    schedule = watcher.poll()
    assert schedule is not None
    assert set(schedule.jobs) == {"ping", "noop"}


def test_a_deleted_file_keeps_the_last_schedule_and_is_reported_once(
    watcher: ScheduleWatcher, path: Path, load: CountingLoad, caplog: pytest.LogCaptureFixture
) -> None:
    path.unlink()
    with caplog.at_level(logging.ERROR, logger="scheduler.watcher"):
        assert watcher.poll() is None
        assert watcher.poll() is None
        assert watcher.poll() is None
    assert [r.getMessage() for r in caplog.records] == [
        f"schedule file {path} is gone; the last valid schedule keeps running"
    ]
    assert load.calls == 1


def test_a_deleted_file_that_comes_back_is_reloaded_and_reported_again_if_deleted(
    watcher: ScheduleWatcher, path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    content = path.read_bytes()
    path.unlink()
    assert watcher.poll() is None
    path.write_bytes(content)  # identical content: still a new file to load
    schedule = watcher.poll()
    assert schedule is not None
    assert set(schedule.jobs) == {"ping"}
    caplog.clear()
    path.unlink()
    with caplog.at_level(logging.ERROR, logger="scheduler.watcher"):
        assert watcher.poll() is None
    assert "is gone" in caplog.text


def test_a_large_file_is_read_in_the_background(
    path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import threading
    import time

    release = threading.Event()

    def slow_load(file: Path) -> ScheduleFile:
        release.wait(10)
        return load_schedule(file, KNOWN)

    monkeypatch.setattr("scheduler.watcher.BACKGROUND_ABOVE", 0)
    watcher = ScheduleWatcher(path, slow_load)
    release.set()
    watcher.load_initial()
    release.clear()
    path.write_text(TWO_JOBS)
    bump_mtime(path)
    assert watcher.poll() is None  # noticed; being read while the caller goes on
    assert watcher.poll() is None
    release.set()
    deadline = time.monotonic() + 10
    schedule = None
    while schedule is None and time.monotonic() < deadline:
        schedule = watcher.poll()
        time.sleep(0.01)
    assert schedule is not None and set(schedule.jobs) == {"ping", "noop"}
    assert watcher.poll() is None  # read once
    path.write_text("jobs: [\n")
    bump_mtime(path, 10)
    with caplog.at_level(logging.ERROR, logger="scheduler.watcher"):
        deadline = time.monotonic() + 10
        while "is invalid" not in caplog.text and time.monotonic() < deadline:
            assert watcher.poll() is None
            time.sleep(0.01)
    assert "the last valid schedule keeps running" in caplog.text
