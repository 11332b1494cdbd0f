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


class Batches:
    """A database that records each batch it is given, and can be down."""

    def __init__(self) -> None:
        self.up = True
        self.batches: list[list[str]] = []

    def write_many(self, rows: list[str]) -> None:
        if not self.up:
            raise OperationalError("UPDATE", {}, Exception("connection refused"))
        self.batches.append(list(rows))


def test_deferred_items_are_written_together_in_the_background() -> None:
    db, buffer = Batches(), WriteBuffer(retry_every=0.01)
    for row in ("a", "b", "c"):
        buffer.defer_many(row, db.write_many)
    assert buffer.flush(timeout=5)
    assert [row for batch in db.batches for row in batch] == ["a", "b", "c"]
    assert len(db.batches) < 3  # at least two went in one round trip
    assert buffer.pending == 0


def test_a_deferred_batch_survives_an_outage_whole() -> None:
    db, buffer = Batches(), WriteBuffer(retry_every=0.01)
    db.up = False
    buffer.defer_many("a", db.write_many)
    buffer.defer_many("b", db.write_many)
    time.sleep(0.2)  # written, failed, kept for later
    assert db.batches == [] and buffer.pending > 0
    db.up = True
    assert buffer.flush(timeout=5)
    assert [row for batch in db.batches for row in batch] == ["a", "b"]


def test_a_batch_the_database_refuses_costs_only_the_refused_item() -> None:
    class Refusing(Batches):
        def write_many(self, rows: list[str]) -> None:
            if "bad" in rows:
                raise IntegrityError("UPDATE", {}, Exception("value refused"))
            super().write_many(rows)

    db, buffer = Refusing(), WriteBuffer(retry_every=0.01)
    buffer.defer_many("a", db.write_many)  # written at once: the thread was idle
    time.sleep(0.01)
    for row in ("b", "bad", "c"):
        buffer.defer_many(row, db.write_many)
    assert buffer.flush(timeout=5)
    assert sorted(row for batch in db.batches for row in batch) == ["a", "b", "c"]
