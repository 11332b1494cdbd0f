"""The scheduler's Celery app without the history recorder, for benchmarks.

    PYTHONPATH=<repo> celery -A bench.plain_app worker

`create_app(Settings.from_env())`, so the same settings and the same `jobs` tasks as
`scheduler.app`, but no run history is written. `BENCH_RESULT_BACKEND` overrides
`result_backend`: `none` for no result backend, or a URL such as
`db+postgresql+psycopg://...`; unset keeps create_app's (`db+` and the database URL).

Importing `scheduler.celery_app` (where create_app lives) connects a Recorder to Celery's
signals as a side effect; this module disconnects those receivers again, and refuses to
load if it finds none (which would mean that module changed and this one must too).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Mapping
from typing import Any

from celery import Celery, signals
from celery.utils.dispatch import Signal

from scheduler.celery_app import create_app
from scheduler.config import Settings
from scheduler.history.recording import Recorder


def disconnect_recorders() -> int:
    """Disconnect every Recorder method from every Celery signal; returns how many."""
    removed = 0
    for signal in vars(signals).values():
        if not isinstance(signal, Signal):
            continue
        for _key, ref in list(signal.receivers):
            receiver = ref() if isinstance(ref, weakref.ReferenceType) else ref
            if isinstance(getattr(receiver, "__self__", None), Recorder):
                removed += signal.disconnect(receiver)
    return removed


if disconnect_recorders() == 0:
    raise RuntimeError(
        "bench.plain_app found no Recorder connected by scheduler.celery_app; "
        "update bench/plain_app.py to match it"
    )


def build(env: Mapping[str, str] | None = None) -> Celery:
    """create_app from the environment, with BENCH_RESULT_BACKEND applied."""
    env = os.environ if env is None else env
    app = create_app(Settings.from_env(env))
    backend = env.get("BENCH_RESULT_BACKEND")
    if backend is not None:
        app.conf.result_backend = None if backend.lower() in ("", "none") else backend
    return app


_app: Celery | None = None


def __getattr__(name: str) -> Any:
    # Built on first use, so that importing `build` creates no app from the environment.
    global _app
    if name in ("app", "celery"):
        if _app is None:
            _app = build()
        return _app
    raise AttributeError(name)
