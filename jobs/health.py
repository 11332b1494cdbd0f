"""Liveness jobs."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

from celery import shared_task


@shared_task(name="jobs.health.ping")
def ping() -> dict[str, str]:
    """Answer with the worker's host and the time: proof that beat, broker and worker work."""
    return {"host": socket.gethostname(), "at": datetime.now(UTC).isoformat()}
