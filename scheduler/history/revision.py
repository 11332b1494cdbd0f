"""Is the history database at the code's migration? Answered without importing Alembic.

Alembic and its migration scripts take ~0.4 s to import and read, paid by every beat and
worker at start; the answer needs one row of `alembic_version`. `scheduler db upgrade`
(schema.py) still goes through Alembic, and a test holds HEAD_REVISION to Alembic's head.
"""

from __future__ import annotations

from sqlalchemy import Engine, inspect, text

HEAD_REVISION = "0004"  # the newest script in migrations/versions/


class SchemaOutOfDate(RuntimeError):
    """Raised when the database is not at the code's migration: run `scheduler db upgrade`."""


def stored_revision(engine: Engine) -> str | None:
    """The migration the database is at (None for an empty database)."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return None if revision is None else str(revision)


def require_current(engine: Engine) -> None:
    """Raise SchemaOutOfDate unless the database is at the head revision."""
    current = stored_revision(engine)
    if current != HEAD_REVISION:
        raise SchemaOutOfDate(
            f"history database is at revision {current or 'none'}, code needs {HEAD_REVISION}: "
            "run `scheduler db upgrade`"
        )
