from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import database, release_servers

# Where the tests that use the servers are (tests/services.py).
_SERVER_DIRS = {"chaos", "e2e", "history"}
_SERVER_MODULES = {"test_beat.py", "test_sender.py"}
_LONG_DIRS = {"chaos", "e2e"}  # real beat and worker processes: 10 s to a minute each


def _rank(item: pytest.Item) -> float:
    if item.path.name == "test_outages.py":
        # Each holds the servers exclusively: spread out among the long tests that use no
        # server, so that the other worker has those to run meanwhile.
        return 5 if "[rabbitmq]" in item.nodeid else 3 if "[redis]" in item.nodeid else 2
    uses_servers = item.path.parent.name in _SERVER_DIRS or item.path.name in _SERVER_MODULES
    if uses_servers:
        return 0 if item.path.parent.name in _LONG_DIRS else 1
    if item.get_closest_marker("slow"):
        return 2.5 if "[frequent]" in item.nodeid or "[fixed-time]" in item.nodeid else 4
    return 6


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order for the two xdist workers (pyproject addopts), which take the next test as they
    finish one: the long tests first, so that neither worker is left with one at the end;
    then the server outages, each followed by long tests that use no server, which the
    other worker runs while the outage holds the servers."""
    items.sort(key=_rank)  # stable: in file order within a rank


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty history database on each dialect we support, one per test."""
    with database(request.param, tmp_path) as url:
        yield url


@pytest.fixture(autouse=True)
def _servers_lock() -> Iterator[None]:
    """Lets go, at the end of each test, of the servers' lock that using one took."""
    yield
    release_servers()
