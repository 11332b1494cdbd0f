"""Real servers for tests: per-test databases, Redis DB numbers and RabbitMQ vhosts.

A test whose server is unreachable skips locally and fails when SCHEDULER_REQUIRE_SERVICES=1
(as CI sets it), so that a down service can never turn a red suite green.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
    """Skip (or fail under SCHEDULER_REQUIRE_SERVICES=1) if host:port does not answer."""
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
        with admin.connect() as conn:
            conn.execute(text(drop))
        admin.dispose()
