"""History writes that survive a database outage: run now, or later, in order.

A worker keeps running jobs while the history database restarts; the rows it could not
write are kept in memory and written, in the order they happened, once the database
answers again. They are lost only if the process itself dies first (logged as such).

A write that nothing waits for (a run's final outcome) can also be deferred: a thread
writes it within DEFER_FOR while the process goes on to its next task, so the database's
round trips overlap the work instead of adding to it. A process killed in that window
leaves its run `running` until the reaper ends it `lost` (its worker no longer lists it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRY_EVERY = 2.0
DEFER_FOR = 0.05  # seconds a deferred write may wait, to be written with others
LIMIT = 100_000  # writes kept; past this the oldest are dropped, and that is logged


def unavailable(exc: BaseException) -> bool:
    """True for errors that mean the database cannot be reached right now."""
    # Imported here: `scheduler next` imports the recorder (and this module) but needs no
    # database, and SQLAlchemy is a quarter of a second of start-up.
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

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
        self._deferred: deque[Callable[[], object]] = deque()
        self._wake = threading.Condition(self._lock)
        self._writer: threading.Thread | None = None
        self._writing = 0
        self._items: list[Any] = []

    @property
    def pending(self) -> int:
        return len(self._pending) + len(self._deferred) + self._writing + len(self._items)

    def defer(self, operation: Callable[[], object]) -> None:
        """Write soon, from a background thread; in order with the other deferred writes."""
        with self._lock:
            self._deferred.append(operation)
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(
                    target=self._write_deferred, name="history-deferred", daemon=True
                )
                self._writer.start()
            self._wake.notify()

    def defer_many(self, item: T, write_many: Callable[[list[T]], object]) -> None:
        """Defer one item; the items deferred together are written by one `write_many` call.

        `write_many` must be the same for every item: it is the batch's, not the item's.
        """
        with self._lock:
            self._items.append(item)
            first = len(self._items) == 1
        if first:
            self.defer(lambda: self._write_items(write_many))

    def _write_items(self, write_many: Callable[[list[T]], object]) -> None:
        with self._lock:
            batch, self._items = self._items, []
        if not batch:
            return
        try:
            # Through `write` with its own batch: kept for later as a whole in an outage.
            self.write(lambda: write_many(batch), None)
        except Exception:
            if len(batch) == 1:
                raise
            # The database refused the batch (not an outage): one item it cannot take must
            # not cost the others their rows, so each is tried on its own.
            log.warning(
                "a batch of %d history writes was refused; writing them one by one", len(batch)
            )
            for item in batch:
                try:
                    self.write(partial(write_many, [item]), None)
                except Exception:
                    log.exception("a deferred history write failed and is dropped")

    def _write_deferred(self) -> None:
        while True:
            with self._lock:
                while not self._deferred:
                    self._wake.wait()
                batch = list(self._deferred)
                self._deferred.clear()
                self._writing = len(batch)
            for operation in batch:
                # Through `write`: an outage queues it, and nothing overtakes that queue.
                try:
                    self.write(operation, None)
                except Exception:
                    log.exception("a deferred history write failed and is dropped")
            with self._lock:
                self._writing = 0
            time.sleep(DEFER_FOR)

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
        while self.pending and time.monotonic() < deadline:
            time.sleep(0.01)
        if self.pending:
            log.error(
                "%d history writes not done at exit: those runs' rows are incomplete",
                self.pending,
            )
        return not self.pending
