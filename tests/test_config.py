from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from scheduler.config import Settings, mask_url


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://:s3cret@redis:6379/0", "redis://:***@redis:6379/0"),
        ("postgresql://app:p%40ss@db/history", "postgresql://app:***@db/history"),
        ("amqp://guest:guest@127.0.0.1:5672//", "amqp://guest:***@127.0.0.1:5672//"),
        ("db+postgresql+psycopg://u:pw@h/db", "db+postgresql+psycopg://u:***@h/db"),
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("sqla+sqlite:///var/broker.sqlite", "sqla+sqlite:///var/broker.sqlite"),
    ],
)
def test_mask_url_hides_passwords_only(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_defaults_are_embedded_sqlite_under_var() -> None:
    settings = Settings.from_env({})
    assert settings.schedule_file == Path("schedules.yaml")
    assert settings.broker_url == "sqla+sqlite:///var/broker.sqlite"
    assert settings.database_url == "sqlite:///var/history.sqlite"
    assert settings.result_backend == "history"  # results read from the run history
    assert settings.timezone == "UTC"


def test_environment_overrides() -> None:
    settings = Settings.from_env(
        {
            "SCHEDULER_SCHEDULE_FILE": "/etc/s.yaml",
            "SCHEDULER_BROKER_URL": "redis://127.0.0.1:6379/3",
            "SCHEDULER_DATABASE_URL": "postgresql://127.0.0.1/test",
            "SCHEDULER_TIMEZONE": "Europe/London",
        }
    )
    assert settings.schedule_file == Path("/etc/s.yaml")
    assert settings.broker_url == "redis://127.0.0.1:6379/3"
    assert settings.database_url == "postgresql://127.0.0.1/test"
    assert settings.timezone == "Europe/London"
    explicit = Settings.from_env({"SCHEDULER_RESULT_BACKEND": "redis://127.0.0.1/1"})
    assert explicit.result_backend == "redis://127.0.0.1/1"


def test_schedule_size_limit_defaults_to_1_mib_and_can_be_raised() -> None:
    assert Settings.from_env({}).max_schedule_bytes == 1 << 20
    raised = Settings.from_env({"SCHEDULER_MAX_SCHEDULE_BYTES": "64_000_000"})
    assert raised.max_schedule_bytes == 64_000_000
    for bad in ("0", "-5", "1MiB"):
        with pytest.raises(ValueError, match="SCHEDULER_MAX_SCHEDULE_BYTES must be a positive"):
            Settings.from_env({"SCHEDULER_MAX_SCHEDULE_BYTES": bad})


def test_claim_ahead_and_unsent_recovery_default_to_10_s_and_can_be_tuned() -> None:
    default = Settings.from_env({})
    assert default.prepare_ahead == default.unsent_after == timedelta(seconds=10)
    tuned = Settings.from_env({"SCHEDULER_PREPARE_AHEAD": "2.5", "SCHEDULER_UNSENT_AFTER": "3"})
    assert tuned.prepare_ahead == timedelta(seconds=2.5)
    assert tuned.unsent_after == timedelta(seconds=3)
    for bad in ("0", "-1", "10s", "nan", "inf"):
        with pytest.raises(ValueError, match="SCHEDULER_UNSENT_AFTER must be a positive number"):
            Settings.from_env({"SCHEDULER_UNSENT_AFTER": bad})
