from __future__ import annotations

import time

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from scheduler.history.buffer import WriteBuffer


class Database:
    """Stands in for the database's availability only; the writes are plain appends."""

    def __init__(self) -> None:
        self.up = True
        self.rows: list[str] = []

    def write(self, row: str) -> str:
        if not self.up:
            raise OperationalError("INSERT", {}, Exception("connection refused"))
        self.rows.append(row)
        return row


def test_writes_go_through_while_the_database_answers() -> None:
    db, buffer = Database(), WriteBuffer(retry_every=0.01)
    assert buffer.write(lambda: db.write("a"), None) == "a"
    assert db.rows == ["a"] and buffer.pending == 0


def test_writes_during_an_outage_are_kept_and_done_in_order_once_it_ends() -> None:
    db, buffer = Database(), WriteBuffer(retry_every=0.01)
    db.up = False
    assert buffer.write(lambda: db.write("started"), "default") == "default"
    db.up = True  # back: whether the retry thread or this write gets there first,
    buffer.write(lambda: db.write("finished"), "default")  # the queued write comes first
    assert buffer.flush(timeout=5)
    assert db.rows == ["started", "finished"]


def test_other_errors_are_not_swallowed() -> None:
    def broken() -> None:
        raise IntegrityError("INSERT", {}, Exception("duplicate"))

    with pytest.raises(IntegrityError):
        WriteBuffer().write(broken, None)


def test_flush_gives_up_after_its_timeout() -> None:
    db, buffer = Database(), WriteBuffer(retry_every=0.01)
    db.up = False
    buffer.write(lambda: db.write("x"), None)
    started = time.monotonic()
    assert buffer.flush(timeout=0.2) is False
    assert time.monotonic() - started < 2
    assert buffer.pending == 1
