"""The schedule file's error type, carrying every problem with its position."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a schedule file; `line` and `col` are 1-based, 0 if unknown."""

    file: str
    line: int
    col: int
    path: str  # "jobs.nightly-report.cron"; empty for a problem of the whole file
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ScheduleError(Exception):
    """Raised when a schedule file is invalid; holds every problem, in file order."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(map(str, self.problems)))


class UnknownJobError(KeyError):
    """Raised when a command names a job that the schedule file does not have."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        super().__init__(name)
        self.name = name
        self.known = tuple(known)
