"""Runs of random jobs, statuses and durations, and `stats` computed from them by its
definition: what the store's answers are held to (test_query_plans, test_stats_rollup)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from scheduler.history.models import RunStatus, Trigger
from scheduler.history.stats import JobStats, percentile

NOW = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
FAILED = {RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.LOST}


def random_rows(
    rng: random.Random, count: int, start: datetime = NOW - timedelta(days=10), step_s: int = 700
) -> list[dict[str, Any]]:
    """`count` runs from `start`, about `step_s` apart, of six jobs (job-0 the busiest)."""
    rows = []
    for n in range(count):
        job = f"job-{min(rng.randrange(6), rng.randrange(6))}"
        status = rng.choice(list(RunStatus))
        # Durations on a coarse grid, so that equal values and ties at p50/p95 occur.
        duration = rng.randrange(40) / 4 if rng.random() < 0.8 else None
        rows.append(
            {
                "id": f"run-{n}",
                "job_name": job,
                "task_name": "jobs.demo.noop",
                "trigger": Trigger.SCHEDULE,
                "status": status,
                # Unique instants: which of two equally new runs is "last" is not specified.
                "created_at": start + timedelta(seconds=n * step_s + rng.random()),
                "duration_s": duration,
                "attempts": 1,
            }
        )
    return rows


def expected_stats(rows: list[dict[str, Any]], since: datetime | None) -> list[JobStats]:
    """`stats` as defined: over the runs created since `since`, the newest run overall."""
    window = [r for r in rows if since is None or r["created_at"] >= since]
    out = []
    for job in sorted({r["job_name"] for r in window}):
        mine = [r for r in window if r["job_name"] == job]
        durations = sorted(r["duration_s"] for r in mine if r["duration_s"] is not None)
        newest = max((r for r in rows if r["job_name"] == job), key=lambda r: r["created_at"])
        out.append(
            JobStats(
                job_name=job,
                runs=len(mine),
                succeeded=sum(r["status"] is RunStatus.SUCCEEDED for r in mine),
                failed=sum(r["status"] in FAILED for r in mine),
                p50_s=percentile(durations, 0.5),
                p95_s=percentile(durations, 0.95),
                last_run_at=newest["created_at"],
                last_status=newest["status"],
            )
        )
    return out
