"""The base class of every job task: applies the job's `retry` settings sent by the beat.

The beat cannot change a user's task, so it sends the job's retry policy in a message
header (`scheduler_retry`) and this base class, set as the app's `task_cls`, retries a
failed run with exponential backoff: backoff * 2**retries, capped at backoff_max.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from celery.exceptions import Ignore, Reject, Retry, SoftTimeLimitExceeded, TimeLimitExceeded

log = logging.getLogger(__name__)

RETRY_HEADER = "scheduler_retry"
_NOT_RETRIED = (Retry, Ignore, Reject, SoftTimeLimitExceeded, TimeLimitExceeded)


def retry_countdown(policy: dict[str, Any], retries: int) -> float:
    """Seconds before retry number `retries + 1`."""
    backoff = float(policy.get("backoff") or 0)
    countdown: float = backoff * 2**retries
    cap = policy.get("backoff_max")
    return min(countdown, float(cap)) if cap else countdown


class JobTask(Task):  # type: ignore[misc]
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if getattr(self.request, "scheduler_duplicate", False):
            # The history says this run already finished or is running on a live worker.
            log.info("%s[%s]: duplicate delivery, not run again", self.name, self.request.id)
            raise Ignore()
        try:
            return super().__call__(*args, **kwargs)
        except _NOT_RETRIED:
            raise
        except Exception as exc:
            policy = self.request.get(RETRY_HEADER) if self.request else None
            retries = self.request.retries or 0
            if not policy or retries >= int(policy.get("max", 0)):
                raise
            raise self.retry(
                exc=exc, countdown=retry_countdown(policy, retries), max_retries=int(policy["max"])
            ) from exc
