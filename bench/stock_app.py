"""Stock Celery beat for bench/dispatch.py: PersistentScheduler and N `crontab()` entries.

    PYTHONPATH=<repo> BENCH_JOBS=1000 celery -A bench.stock_app beat -s DIR/celerybeat-schedule

The scheduler's app settings without its recorder (bench.plain_app), with `beat_schedule`
holding BENCH_JOBS entries `bench-00000`... that send `jobs.demo.noop` every minute, and
`beat_scheduler` set back to Celery's own. When the beat has built its scheduler and is
about to tick (`beat_init`), the time is written to BENCH_READY_FILE if that is set.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from celery import Celery, signals
from celery.schedules import crontab

from bench.plain_app import build


def build_stock(env: Mapping[str, str] | None = None) -> Celery:
    env = os.environ if env is None else env
    app = build(env)
    jobs = int(env.get("BENCH_JOBS", "0"))
    app.conf.beat_scheduler = "celery.beat:PersistentScheduler"
    app.conf.beat_schedule = {
        f"bench-{i:05d}": {"task": "jobs.demo.noop", "schedule": crontab()} for i in range(jobs)
    }
    return app


@signals.beat_init.connect
def _ready(sender: Any = None, **_: Any) -> None:
    path = os.environ.get("BENCH_READY_FILE")
    if path:
        Path(path).write_text(f"{time.time():.6f}\n")


_app: Celery | None = None


def __getattr__(name: str) -> Any:
    global _app
    if name in ("app", "celery"):
        if _app is None:
            _app = build_stock()
        return _app
    raise AttributeError(name)
