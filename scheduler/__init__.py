"""scheduler: a scheduled job runner on Celery beat.

`app` is the Celery app, so that `celery -A scheduler worker` and `celery -A scheduler beat`
find it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery import Celery

    app: Celery

__all__ = ["app"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `scheduler validate` and `scheduler next` do not pay for importing Celery
    # until a command needs the app.
    if name in ("app", "celery"):
        from scheduler.celery_app import app

        return app
    raise AttributeError(name)
