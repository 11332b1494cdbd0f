from __future__ import annotations

import logging
import time

import pytest

from scheduler.notify import Notifier, wanted
from tests.webhook import webhook_receiver


def _wait(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():  # type: ignore[operator]
        time.sleep(0.02)


def test_wanted_matches_status_and_needs_a_webhook() -> None:
    spec = {"on": ["failed", "missed"], "webhook": "http://127.0.0.1:1/x"}
    assert wanted(spec, "failed")
    assert not wanted(spec, "succeeded")
    assert not wanted({"on": ["failed"]}, "failed")
    assert not wanted(None, "failed")


def test_posts_json_and_retries_until_accepted() -> None:
    with webhook_receiver(fail_first=2) as hook:
        notifier = Notifier(attempts=4, backoff=0.01)
        notifier.send(hook.url, {"run_id": "r1", "status": "failed"})
        _wait(lambda: hook.received)
        notifier.close()
        assert hook.received == [{"run_id": "r1", "status": "failed"}]
        assert hook.calls == 3


def test_gives_up_after_its_attempts_and_logs_without_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with webhook_receiver(fail_first=100) as hook:
        secret_url = hook.url.replace("http://", "http://user:s3cret@")
        notifier = Notifier(attempts=3, backoff=0.01)
        with caplog.at_level(logging.ERROR, logger="scheduler.notify"):
            notifier.send(secret_url, {"run_id": "r2"})
            notifier.close(timeout=10)
        assert hook.calls == 3
        assert hook.received == []
        assert hook.authorizations == ["Basic dXNlcjpzM2NyZXQ="] * 3  # user:s3cret
    assert "r2" in caplog.text and "failed after 3 attempts" in caplog.text
    assert "s3cret" not in caplog.text


def test_send_never_blocks_on_a_dead_webhook() -> None:
    notifier = Notifier(attempts=2, backoff=1.0, timeout=1.0)
    started = time.monotonic()
    notifier.send("http://127.0.0.1:9/nothing-listens", {"run_id": "r3"})
    assert time.monotonic() - started < 0.5
