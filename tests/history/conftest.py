from __future__ import annotations

from collections.abc import Iterator

import pytest

from scheduler.history.db import make_engine
from scheduler.history.schema import upgrade
from scheduler.history.store import HistoryStore


@pytest.fixture
def store(database_url: str) -> Iterator[HistoryStore]:
    """A HistoryStore on a fresh, migrated database of each kind (tests/conftest.py)."""
    engine = make_engine(database_url)
    upgrade(engine)
    yield HistoryStore(engine)
    engine.dispose()
