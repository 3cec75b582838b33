"""Scheduled work: the kit's schedule table, and an attempt count and last error on due rows

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-02 13:40:00

The fulfilment worker now runs on the kit's scheduler (switchboard_kit.schedule): a failed step is
retried with a growing backoff counted in ``attempts`` and parked after the last attempt with its
error in ``last_error``. ``schedule`` holds the kit's recurring (cron) schedules.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DUE_TABLES = ("product_order", "cancel_product_order")


def upgrade() -> None:
    op.create_table(
        "schedule",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("cron", sa.Text(), nullable=False),
        sa.Column("tick_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_schedule")),
    )
    for table in DUE_TABLES:
        op.add_column(table, sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False))
        op.add_column(table, sa.Column("last_error", sa.Text(), nullable=True))


def downgrade() -> None:
    for table in DUE_TABLES:
        op.drop_column(table, "last_error")
        op.drop_column(table, "attempts")
    op.drop_table("schedule")
