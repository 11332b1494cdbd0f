"""Run statuses and triggers (SPEC §6), importable without SQLAlchemy."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum


class RunStatus(StrEnum):
    MISSED = "missed"
    SKIPPED = "skipped"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRYING = "retrying"
    TIMED_OUT = "timed_out"
    LOST = "lost"
    REVOKED = "revoked"


ACTIVE_STATUSES = frozenset({RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.RETRYING})
FINAL_STATUSES = frozenset(RunStatus) - ACTIVE_STATUSES


class Trigger(StrEnum):
    SCHEDULE = "schedule"
    CATCHUP = "catchup"
    MANUAL = "manual"
    API = "api"


def utcnow() -> datetime:
    return datetime.now(UTC)
