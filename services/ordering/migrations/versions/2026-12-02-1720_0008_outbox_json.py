"""outbox events stored as json

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 17:20:00

An order's create writes two outbox rows, each carrying the whole order. As ``jsonb`` PostgreSQL built a
binary copy of each (parsing, sorting keys) that nothing reads: the relay and the hub read the payload
back whole. ``json`` only checks the text (issue #8: PostgreSQL CPU per POST). The column keeps lz4 (0002).
"""

from collections.abc import Sequence

from switchboard_kit.migrations import outbox_to_json, outbox_to_jsonb

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    outbox_to_json()


def downgrade() -> None:
    outbox_to_jsonb()
