"""tables of the stats rollup: per-job totals at a few instants, runs left out of them

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

Empty tables only: `stats` and the beat fill them as they need them (rollup.py), so the
upgrade takes no time on a big history.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from scheduler.history.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stats_snapshots",
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("built_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("at", name=op.f("pk_stats_snapshots")),
    )
    op.create_table(
        "stats_totals",
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("job_name", sa.String(length=200), nullable=False),
        sa.Column("runs", sa.BigInteger(), nullable=False),
        sa.Column("succeeded", sa.BigInteger(), nullable=False),
        sa.Column("failed", sa.BigInteger(), nullable=False),
        sa.Column("timed", sa.BigInteger(), nullable=False),
        sa.Column("low", sa.Integer(), nullable=False),
        sa.Column("durations", sa.LargeBinary(), nullable=False),
        sa.Column("newest_at", UTCDateTime(), nullable=True),
        sa.Column("newest_id", sa.String(length=155), nullable=True),
        sa.Column(
            "newest_status",
            sa.Enum(
                "missed",
                "skipped",
                "queued",
                "running",
                "succeeded",
                "failed",
                "retrying",
                "timed_out",
                "lost",
                "revoked",
                name="run_status",
                native_enum=False,
                length=20,
            ),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("at", "job_name", name=op.f("pk_stats_totals")),
    )
    op.create_table(
        "stats_pending",
        sa.Column("run_id", sa.String(length=155), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("job_name", sa.String(length=200), nullable=False),
        sa.Column("keyed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_stats_pending")),
    )
    with op.batch_alter_table("stats_pending", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_stats_pending_created_at"), ["created_at"], unique=False
        )
    lock = op.create_table(
        "stats_lock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("changes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_lock")),
    )
    op.bulk_insert(lock, [{"id": 1, "changes": 0}])


def downgrade() -> None:
    op.drop_table("stats_lock")
    with op.batch_alter_table("stats_pending", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stats_pending_created_at"))
    op.drop_table("stats_pending")
    op.drop_table("stats_totals")
    op.drop_table("stats_snapshots")
