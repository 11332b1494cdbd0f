"""Live reload of the schedule file: notice edits, keep the last valid schedule on a bad one."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from scheduler.errors import ScheduleError
from scheduler.spec import ScheduleFile

log = logging.getLogger(__name__)

Signature = tuple[int, int, int] | None


def _signature(path: Path) -> Signature:
    # Inode too: an editor or a Kubernetes ConfigMap that replaces the file by rename can
    # leave size and (coarse) mtime unchanged.
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class ScheduleWatcher:
    """Polls one schedule file; `poll()` returns a new valid ScheduleFile when it changed."""

    def __init__(self, path: Path, load: Callable[[Path], ScheduleFile]) -> None:
        self.path = path
        self._load = load
        self._seen: Signature = None
        self._missing_reported = False

    def load_initial(self) -> ScheduleFile:
        """Load the file now; raises ScheduleError if it is invalid."""
        self._seen = _signature(self.path)
        return self._load(self.path)

    def poll(self) -> ScheduleFile | None:
        """The new schedule if the file changed and is valid; None otherwise (errors logged)."""
        signature = _signature(self.path)
        if signature is None:
            if not self._missing_reported:
                log.error(
                    "schedule file %s is gone; the last valid schedule keeps running", self.path
                )
                self._missing_reported = True
            self._seen = None
            return None
        self._missing_reported = False
        if signature == self._seen:
            return None
        self._seen = signature
        try:
            schedule = self._load(self.path)
        except ScheduleError as exc:
            log.error(
                "schedule file %s is invalid; the last valid schedule keeps running:\n%s",
                self.path,
                exc,
            )
            return None
        log.info("schedule file %s reloaded: %d jobs", self.path, len(schedule.jobs))
        return schedule
