"""indexes for history and stats on big tables

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

`history --job X` got (job_name, created_at, id), the whole ORDER BY, so that its page is
read off the index in order; `stats` got (created_at, job_name, status, duration_s), every
column it reads, so that PostgreSQL scans its window from the index alone. Each replaces the
narrower index it extends. On PostgreSQL, CREATE INDEX blocks writes to `runs` while it
builds (about a minute per 10 M rows): upgrade a big history when the workers are stopped.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_runs_job_created_id", ["job_name", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_runs_created_stats",
            ["created_at", "job_name", "status", "duration_s"],
            unique=False,
        )
        batch_op.drop_index("ix_runs_job_created")
        batch_op.drop_index("ix_runs_created_at")


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.create_index("ix_runs_created_at", ["created_at"], unique=False)
        batch_op.create_index("ix_runs_job_created", ["job_name", "created_at"], unique=False)
        batch_op.drop_index("ix_runs_created_stats")
        batch_op.drop_index("ix_runs_job_created_id")
