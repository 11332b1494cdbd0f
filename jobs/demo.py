"""Jobs that show how failures, slowness and no-ops are recorded."""

from __future__ import annotations

import time

from celery import shared_task


class DemoFailure(RuntimeError):
    """Raised on purpose by `jobs.demo.fail`."""


@shared_task(name="jobs.demo.fail")
def fail(message: str = "this job fails on purpose") -> None:
    """Always raise, so that failures and their tracebacks can be seen in the history."""
    raise DemoFailure(message)


@shared_task(name="jobs.demo.slow")
def slow(seconds: float = 5.0) -> float:
    """Sleep, to show long runs, overlap and time limits."""
    time.sleep(seconds)
    return seconds


@shared_task(name="jobs.demo.noop")
def noop() -> None:
    """Do nothing: the cheapest job, for measuring the scheduler's own cost."""
