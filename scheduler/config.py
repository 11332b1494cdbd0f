"""Settings from the environment (SPEC §2), and masking of secrets in URLs."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

VAR_DIR = Path("var")
# SPEC §3 refuses schedule files over 1 MiB unread; a deployment with a very large schedule
# (about 10,000 jobs per MiB) raises the limit with this variable.
DEFAULT_MAX_SCHEDULE_BYTES = 1 << 20
MAX_BYTES_VARIABLE = "SCHEDULER_MAX_SCHEDULE_BYTES"
# Results read from the run history (scheduler/history/backend.py): written once, not twice.
HISTORY_BACKEND = "history"


@dataclass(frozen=True, slots=True)
class Settings:
    schedule_file: Path
    broker_url: str
    database_url: str
    result_backend: str
    timezone: str
    # A worker silent for this long is taken to be dead: its running runs become `lost`.
    worker_timeout: timedelta = timedelta(seconds=60)
    # A run sent this long ago that no worker started is `lost` (its message is gone).
    queued_timeout: timedelta = timedelta(hours=1)
    max_schedule_bytes: int = DEFAULT_MAX_SCHEDULE_BYTES
    # Beat claims ticks due this soon and builds their messages ahead (scheduler/beat.py).
    # Longer: on time with more jobs due at once; shorter: a beat that crashes leaves fewer
    # claimed ticks to the others, and a warm stop drains sooner.
    prepare_ahead: timedelta = timedelta(seconds=10)
    # A claimed tick not recorded as sent this long after it was due is sent by any beat:
    # its beat crashed. Shorter recovers sooner, at the cost of (harmless) duplicate
    # messages from a beat that is merely slow to record what it sent.
    unsent_after: timedelta = timedelta(seconds=10)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from SCHEDULER_* variables, defaulting to embedded SQLite files in ./var."""
        env = os.environ if env is None else env
        database_url = env.get("SCHEDULER_DATABASE_URL") or f"sqlite:///{VAR_DIR}/history.sqlite"
        return cls(
            schedule_file=Path(env.get("SCHEDULER_SCHEDULE_FILE") or "schedules.yaml"),
            broker_url=env.get("SCHEDULER_BROKER_URL") or f"sqla+sqlite:///{VAR_DIR}/broker.sqlite",
            database_url=database_url,
            result_backend=env.get("SCHEDULER_RESULT_BACKEND") or HISTORY_BACKEND,
            timezone=env.get("SCHEDULER_TIMEZONE") or "UTC",
            worker_timeout=timedelta(seconds=float(env.get("SCHEDULER_WORKER_TIMEOUT") or 60)),
            queued_timeout=timedelta(seconds=float(env.get("SCHEDULER_QUEUED_TIMEOUT") or 3600)),
            max_schedule_bytes=_positive_int(env, MAX_BYTES_VARIABLE, DEFAULT_MAX_SCHEDULE_BYTES),
            prepare_ahead=_positive_seconds(env, "SCHEDULER_PREPARE_AHEAD", 10),
            unsent_after=_positive_seconds(env, "SCHEDULER_UNSENT_AFTER", 10),
        )


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(f"{name} must be a positive whole number, not {raw!r}")
    return value


def _positive_seconds(env: Mapping[str, str], name: str, default: float) -> timedelta:
    raw = env.get(name)
    if not raw:
        return timedelta(seconds=default)
    try:
        value = float(raw)
    except ValueError:
        value = 0
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name} must be a positive number of seconds, not {raw!r}")
    return timedelta(seconds=value)


# user:password@ or :password@ in the authority part of a URL.
_USERINFO = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<secret>[^@/\s]*)@"
)


def mask_url(url: str) -> str:
    """The URL with its password replaced by `***` (`redis://:***@host`)."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url)


# The drivers we install: psycopg 3 and PyMySQL (pure Python, no client library needed).
_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}


def sqlalchemy_url(url: str) -> str:
    """`postgresql://...` -> `postgresql+psycopg://...`; URLs naming a driver are kept."""
    scheme, sep, rest = url.partition("://")
    return f"{_DRIVERS.get(scheme, scheme)}{sep}{rest}"
