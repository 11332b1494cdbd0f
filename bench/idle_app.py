"""Stock Celery beat or RedBeat with BENCH_JOBS entries that are not due, for bench/idle.py.

    PYTHONPATH=<repo> BENCH_PEER=stock|redbeat BENCH_JOBS=100000 [BENCH_FREQUENT=bench-first]
        celery -A bench.idle_app beat -s DIR/celerybeat-schedule

The scheduler's app settings without its recorder (bench.plain_app), and BENCH_JOBS entries
`idle-000000`... of `jobs.demo.noop` on crontab(0 0 1 1 *): due once a year, so never during a
run. BENCH_FREQUENT names one more entry, due every second, for measuring the time to the
first dispatch; its task is named after it (no worker runs, and an unregistered name is sent
without an argument check), so that the reader can tell its messages apart.
`stock` is Celery's PersistentScheduler; `redbeat` is bench/redbeat_app.py's RedBeat app
(the broker's Redis DB, key prefix BENCH_REDBEAT_PREFIX, default `bench-redbeat:`) with these
entries instead of its every-minute ones. When the beat has built its scheduler (and RedBeat
has taken its lock), at `beat_init`, the time is written to BENCH_READY_FILE if that is set.
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

TASK = "jobs.demo.noop"


def yearly() -> crontab:
    """The peers' spelling of `0 0 1 1 *`."""
    return crontab(minute=0, hour=0, day_of_month=1, month_of_year=1)


def build_peer(env: Mapping[str, str] | None = None) -> Celery:
    """The app of one peer scheduler, from BENCH_PEER, BENCH_JOBS and BENCH_FREQUENT."""
    env = os.environ if env is None else env
    if env.get("BENCH_PEER", "stock") == "redbeat":
        # Only here: importing redbeat connects its lock receiver, which fails on stock beat.
        # bench.redbeat_app stamps BENCH_READY_FILE itself, once RedBeat holds its lock.
        from bench.redbeat_app import build_redbeat

        app = build_redbeat({**env, "BENCH_JOBS": "0"})
    else:
        app = build(env)
        app.conf.beat_scheduler = "celery.beat:PersistentScheduler"
        signals.beat_init.connect(_ready, weak=False)
    schedule: dict[str, dict[str, Any]] = {
        f"idle-{i:06d}": {"task": TASK, "schedule": yearly()}
        for i in range(int(env.get("BENCH_JOBS", "0")))
    }
    frequent = env.get("BENCH_FREQUENT")
    if frequent:
        schedule[frequent] = {"task": frequent, "schedule": 1.0}
    app.conf.beat_schedule = schedule
    return app


def _ready(sender: Any = None, **_: Any) -> None:
    path = os.environ.get("BENCH_READY_FILE")
    if path:
        Path(path).write_text(f"{time.time():.6f}\n")


_app: Celery | None = None


def __getattr__(name: str) -> Any:
    global _app
    if name in ("app", "celery"):
        if _app is None:
            _app = build_peer()
        return _app
    raise AttributeError(name)
