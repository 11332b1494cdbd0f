"""Webhook notifications of runs (`notify: {on: [...], webhook: URL}`, SPEC §3).

One JSON POST per matching run, retried with backoff, from a background thread, so a slow
or dead webhook never delays a run or the beat. Notifications still queued when the
process exits are dropped after `close()` waits a little for them.
"""

from __future__ import annotations

import base64
import json
import logging
import queue
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from scheduler.config import mask_url

log = logging.getLogger(__name__)

NOTIFY_HEADER = "scheduler_notify"


def wanted(spec: Mapping[str, Any] | None, status: str) -> bool:
    """True if a notify spec (as sent in the message header) asks for this status."""
    return bool(spec and spec.get("webhook") and status in spec.get("on", ()))


class Notifier:
    """Posts JSON payloads to webhooks in the background, with retries."""

    def __init__(self, attempts: int = 4, backoff: float = 1.0, timeout: float = 5.0) -> None:
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def send(self, webhook: str, payload: dict[str, Any]) -> None:
        """Queue one POST; returns at once."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
                self._thread.start()
        self._queue.put((webhook, payload))

    def close(self, timeout: float = 5.0) -> None:
        """Wait up to `timeout` seconds for queued notifications, then stop."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            self._post(*item)

    def _post(self, webhook: str, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, default=str).encode()
        url, headers = _split_credentials(webhook)
        error: Exception | None = None
        for attempt in range(self.attempts):
            request = urllib.request.Request(url, data=body, method="POST", headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    if 200 <= response.status < 300:
                        return
            except OSError as exc:  # URLError, HTTPError, timeouts and refused connections
                error = exc
            else:
                error = RuntimeError(f"HTTP {response.status}")
            if attempt + 1 < self.attempts:
                time.sleep(self.backoff * 2**attempt)
        log.error(
            "notification of run %s to %s failed after %d attempts: %s",
            payload.get("run_id"),
            mask_url(webhook),
            self.attempts,
            error,
        )


def _split_credentials(webhook: str) -> tuple[str, dict[str, str]]:
    """urllib cannot send `user:pass@` from a URL: turn it into a Basic auth header."""
    parts = urllib.parse.urlsplit(webhook)
    headers = {"Content-Type": "application/json"}
    if parts.username is None:
        return webhook, headers
    user = urllib.parse.unquote(parts.username)
    password = urllib.parse.unquote(parts.password or "")
    headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc)), headers
