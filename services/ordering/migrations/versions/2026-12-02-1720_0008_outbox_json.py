"""outbox events stored as json

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 17:20:00

An order's create writes two outbox rows, each carrying the whole order. As ``jsonb`` PostgreSQL built a
binary copy of each (parsing, sorting keys) that nothing reads: the relay and the hub read the payload
back whole. ``json`` only checks the text (issue #8: PostgreSQL CPU per POST). The column keeps lz4 (0002).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _convert(to: str) -> None:
    op.execute(
        f"ALTER TABLE outbox ALTER COLUMN payload TYPE {to} USING payload::{to}, "
        "ALTER COLUMN headers DROP DEFAULT, "
        f"ALTER COLUMN headers TYPE {to} USING headers::{to}, "
        f"ALTER COLUMN headers SET DEFAULT '{{}}'::{to}"
    )
    op.execute(
        "DO $$ BEGIN "
        "IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)) "
        "THEN ALTER TABLE outbox ALTER COLUMN payload SET COMPRESSION lz4; END IF; END $$"
    )


def upgrade() -> None:
    _convert("json")


def downgrade() -> None:
    _convert("jsonb")
