"""celery-redbeat for bench/dispatch.py: RedBeatScheduler and N `crontab()` entries.

    PYTHONPATH=<repo> BENCH_JOBS=1000 celery -A bench.redbeat_app beat

The scheduler's app settings without its recorder (bench.plain_app), with `beat_schedule`
holding BENCH_JOBS entries `bench-00000`... that send `jobs.demo.noop` every minute (as in
bench/stock_app.py), and `beat_scheduler` set to RedBeat's. RedBeat keeps the schedule, each
entry's last run and its lock in Redis: in the broker's DB unless BENCH_REDBEAT_URL names
another, under the key prefix BENCH_REDBEAT_PREFIX (default `bench-redbeat:`), which the
queue reader of dispatch.py never looks at. State left by an earlier run would change what
is due, so the caller must start from an empty DB (dispatch.py flushes its private DB before
every run). When the beat has built its scheduler and taken RedBeat's lock (`beat_init`),
the time is written to BENCH_READY_FILE if that is set.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Imported before our beat_init receiver is connected: Celery calls receivers in the order
# they were connected, so the ready time is stamped after RedBeat has acquired its lock.
import redbeat.schedulers
from celery import Celery, signals
from celery.schedules import crontab

from bench.plain_app import build


def build_redbeat(env: Mapping[str, str] | None = None) -> Celery:
    """The plain app with N every-minute crontab entries, scheduled by RedBeat."""
    env = os.environ if env is None else env
    app = build(env)
    jobs = int(env.get("BENCH_JOBS", "0"))
    app.conf.beat_scheduler = "redbeat.RedBeatScheduler"
    app.conf.redbeat_redis_url = env.get("BENCH_REDBEAT_URL") or app.conf.broker_url
    app.conf.redbeat_key_prefix = env.get("BENCH_REDBEAT_PREFIX", "bench-redbeat:")
    # Set explicitly: left unset, RedBeat falls back to broker_transport_options and logs a
    # deprecation warning, which dispatch.py would report as a problem in the beat log.
    app.conf.redbeat_redis_options = {}
    app.conf.beat_schedule = {
        f"bench-{i:05d}": {"task": "jobs.demo.noop", "schedule": crontab()} for i in range(jobs)
    }
    return app


@signals.beat_init.connect
def _ready(sender: Any = None, **_: Any) -> None:
    path = os.environ.get("BENCH_READY_FILE")
    if not path:
        return
    scheduler = sender.scheduler if sender is not None else None
    if isinstance(scheduler, redbeat.schedulers.RedBeatScheduler) and scheduler.lock is None:
        # RedBeat's own receiver failed to take the lock (Celery logs why); this beat will
        # not tick, so it never becomes ready.
        return
    Path(path).write_text(f"{time.time():.6f}\n")


_app: Celery | None = None


def __getattr__(name: str) -> Any:
    global _app
    if name in ("app", "celery"):
        if _app is None:
            _app = build_redbeat()
        return _app
    raise AttributeError(name)
