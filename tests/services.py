"""Real servers for tests: per-test databases, Redis DB numbers and RabbitMQ vhosts.

A test whose server is unreachable skips locally and fails when SCHEDULER_REQUIRE_SERVICES=1
(as CI sets it), so that a down service can never turn a red suite green.

Tests run in parallel (pytest-xdist), and other runs of the suite may share the servers:
- a Redis DB number is leased (`redis_db`), never picked at random, before it is flushed;
- every test that reaches a server holds a shared lock on the servers for its duration,
  and a test that stops a server (tests/chaos/test_outages.py) holds it exclusively
  (`servers_exclusively`), so that no other test sees that server go away.
"""

from __future__ import annotations

import fcntl
import os
import random
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest
from sqlalchemy import create_engine, text

POSTGRES_ADMIN = os.environ.get(
    "SCHEDULER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
MARIADB_ADMIN = os.environ.get(
    "SCHEDULER_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test"
)
REDIS_URL = os.environ.get("SCHEDULER_TEST_REDIS_URL", "redis://127.0.0.1:6379")
AMQP_URL = os.environ.get("SCHEDULER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672")


def wait_port(host: str, port: int, timeout: float = 30.0) -> None:
    """Wait until host:port accepts connections (a server that was just restarted)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def require(host: str, port: int, name: str) -> None:
    """Skip (or fail under SCHEDULER_REQUIRE_SERVICES=1) if host:port does not answer.

    Also takes the servers' shared lock, held until the test ends (`release_servers`).
    """
    _lock_servers(exclusive=False)
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as exc:
        message = f"{name} at {host}:{port} is not reachable: {exc}"
        if os.environ.get("SCHEDULER_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def database(kind: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of `kind` (sqlite, postgresql, mariadb); yields its URL."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'history.sqlite'}"
        return
    name = f"sched_{uuid.uuid4().hex[:12]}"
    if kind == "postgresql":
        require("127.0.0.1", 5432, "PostgreSQL")
        admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
        url = POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"
        drop = f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    else:
        require("127.0.0.1", 3306, "MariaDB")
        admin = create_engine(MARIADB_ADMIN, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
        url = MARIADB_ADMIN.rsplit("/", 1)[0] + f"/{name}"
        drop = f"DROP DATABASE IF EXISTS {name}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield url
    finally:
        _lock_servers(exclusive=False)  # a module's database is dropped after its last test
        with admin.connect() as conn:
            conn.execute(text(drop))
        admin.dispose()


# -- the servers' lock: shared by the tests that use them, exclusive for one that stops one --

# In the temporary directory, not the work tree: any run of the suite on this machine
# (another clone, another worktree) shares the same servers.
_LOCK_DIR = Path(tempfile.gettempdir())
_held: list[IO[bytes]] = []  # this process's open lock files while a test holds the lock
_held_exclusive = False


def _flock(name: str, mode: int) -> IO[bytes]:
    handle = (_LOCK_DIR / name).open("ab")
    fcntl.flock(handle, mode)
    return handle


def _lock_servers(exclusive: bool) -> None:
    global _held_exclusive
    if _held and (_held_exclusive or not exclusive):
        return  # this test holds it already
    release_servers()  # shared, held since a module fixture's teardown: the test comes first
    # A waiting exclusive holder keeps the turnstile: new shared holders queue behind it
    # instead of starving it.
    turnstile = _flock("scheduler-tests-turnstile.lock", fcntl.LOCK_EX)
    try:
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        _held.append(_flock("scheduler-tests-servers.lock", mode))
    finally:
        turnstile.close()
    _held_exclusive = exclusive


def servers_exclusively() -> None:
    """For a test that stops a server: wait until no other test uses one, hold them all.

    Call it first, before the test reaches any server.
    """
    _lock_servers(exclusive=True)


def release_servers() -> None:
    """End of a test (tests/conftest.py): let go of the servers' lock, if it was taken."""
    global _held_exclusive
    while _held:
        _held.pop().close()
    _held_exclusive = False


# -- Redis DB numbers, leased --

LEASE_KEY = "sched-test-lease:{}"  # in DB 0, which no test uses or flushes
LEASE_SECONDS = 900  # longer than any test; a crashed run's leases expire on their own
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


@contextmanager
def redis_db(timeout: float = 300.0) -> Iterator[str]:
    """The URL of a Redis DB (1..15) leased to this test alone, flushed before and after.

    The lease is a key in DB 0 set only if absent (SET NX), with an expiry, removed only
    by its holder: two tests, in this run or another one, never get the same DB. Waits for
    a DB to come free if all fifteen are leased.
    """
    import redis

    require("127.0.0.1", 6379, "Redis")
    leases = redis.Redis.from_url(f"{REDIS_URL}/0")
    token = uuid.uuid4().hex
    deadline = time.monotonic() + timeout
    numbers = list(range(1, 16))

    def lease(n: int) -> bool:
        return bool(leases.set(LEASE_KEY.format(n), token, nx=True, ex=LEASE_SECONDS))

    db = None
    while db is None:
        random.shuffle(numbers)
        db = next((n for n in numbers if lease(n)), None)
        if db is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no Redis DB free among 1..15 after {timeout:.0f} s")
            time.sleep(0.5)
    url = f"{REDIS_URL}/{db}"
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
        yield url
    finally:
        try:
            client.flushdb()
            # A Redis restarted by the test (test_outages) has lost the lease already.
            leases.eval(_RELEASE, 1, LEASE_KEY.format(db), token)
        finally:
            client.close()
            leases.close()
