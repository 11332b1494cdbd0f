"""Alembic environment: run with a connection handed over by scheduler.history.schema."""

from __future__ import annotations

from alembic import context

from scheduler.history.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # batch mode, so ALTERs also work on SQLite
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
