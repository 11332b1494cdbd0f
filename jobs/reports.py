"""Report jobs: write files under ./var/reports."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from celery import shared_task

REPORT_DIR = Path("var") / "reports"


@shared_task(name="jobs.reports.build_report")
def build_report(kind: str = "daily", format: str = "json") -> str:
    """Write a small report file and return its path."""
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    made_at = datetime.now(UTC)
    path = REPORT_DIR / f"{kind}-{made_at:%Y%m%dT%H%M%S%f}.{format}"
    body: dict[str, Any] = {"kind": kind, "made_at": made_at.isoformat()}
    path.write_text(json.dumps(body) + "\n", encoding="utf-8")
    return str(path)
