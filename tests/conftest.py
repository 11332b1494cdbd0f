from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import database, release_servers


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
