"""History writes that survive a database outage: run now, or later, in order.

A worker keeps running jobs while the history database restarts; the rows it could not
write are kept in memory and written, in the order they happened, once the database
answers again. They are lost only if the process itself dies first (logged as such).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRY_EVERY = 2.0
LIMIT = 100_000  # writes kept; past this the oldest are dropped, and that is logged


def unavailable(exc: BaseException) -> bool:
    """True for errors that mean the database cannot be reached right now."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class WriteBuffer:
    """Runs writes at once while the database answers; queues them in order when it doesn't."""

    def __init__(self, retry_every: float = RETRY_EVERY, limit: int = LIMIT) -> None:
        self.retry_every = retry_every
        self._pending: deque[Callable[[], object]] = deque(maxlen=limit)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._dropped = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def write(self, operation: Callable[[], T], default: T) -> T:
        """The operation's result, or `default` if it was queued for later."""
        with self._lock:
            if self._pending:  # keep order: nothing may overtake a queued write
                self._queue(operation)
                return default
        try:
            return operation()
        except Exception as exc:
            if not unavailable(exc):
                raise
            log.warning(
                "history database unavailable (%s); keeping writes until it is back",
                type(exc).__name__,
            )
            with self._lock:
                self._queue(operation)
            return default

    def _queue(self, operation: Callable[[], object]) -> None:
        if len(self._pending) == self._pending.maxlen:
            self._dropped += 1
            log.error("history write buffer full: %d oldest writes dropped", self._dropped)
        self._pending.append(operation)
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._drain, name="history-retry", daemon=True)
            self._thread.start()

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    return
                operation = self._pending[0]
            try:
                operation()
            except Exception as exc:
                if unavailable(exc):
                    time.sleep(self.retry_every)
                    continue
                log.exception("a delayed history write failed and is dropped")
            with self._lock:
                self._pending.popleft()
                if not self._pending:
                    log.info("history database back: delayed writes done")

    def flush(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for queued writes; True if none is left."""
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._pending:
            log.error(
                "%d history writes not done at exit: those runs' rows are incomplete",
                len(self._pending),
            )
        return not self._pending
