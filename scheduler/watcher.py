"""Live reload of the schedule file: notice edits, keep the last valid schedule on a bad one."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from scheduler.errors import ScheduleError
from scheduler.spec import ScheduleFile

log = logging.getLogger(__name__)

Signature = tuple[int, int, int] | None
# Files larger than this are read in a background thread: a 100,000-job file takes seconds
# to validate, and the beat must keep sending meanwhile. Smaller ones take milliseconds.
BACKGROUND_ABOVE = 256 * 1024


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
        self._loading: threading.Thread | None = None
        self._loaded: ScheduleFile | None = None

    def load_initial(self) -> ScheduleFile:
        """Load the file now; raises ScheduleError if it is invalid."""
        self._seen = _signature(self.path)
        return self._load(self.path)

    def poll(self) -> ScheduleFile | None:
        """The new schedule if the file changed and is valid; None otherwise (errors logged).

        A large file is read in the background: the poll that notices the change returns
        None, and a later one returns the schedule once it is read.
        """
        if self._loading is not None:
            if self._loading.is_alive():
                return None
            self._loading, loaded, self._loaded = None, self._loaded, None
            if loaded is not None:
                return loaded
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
        if signature[1] > BACKGROUND_ABOVE:
            self._loading = threading.Thread(
                target=self._load_in_background, name="schedule-reload", daemon=True
            )
            self._loading.start()
            return None
        return self._reload()

    def _load_in_background(self) -> None:
        self._loaded = self._reload()

    def _reload(self) -> ScheduleFile | None:
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
