"""lz4 for the stored JSON documents and event payloads

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 16:40:00

An order document (about 3 KB) is over PostgreSQL's TOAST threshold, so every write compresses it and
every read decompresses it: with the default pglz that is a visible share of PostgreSQL's CPU per
request; lz4 does the same work several times faster. Only servers built with lz4 offer it (PostgreSQL
14 and later, as Debian and the official images are); elsewhere this revision changes nothing. Values
already stored keep their compression until they are rewritten.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("product_order", "doc"),
    ("cancel_product_order", "doc"),
    ("outbox", "payload"),
    ("hub_delivery", "payload"),
)


def _set_compression(method: str) -> None:
    statements = " ".join(
        f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {method};" for table, column in COLUMNS
    )
    op.execute(
        "DO $$ BEGIN "
        "IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)) "
        f"THEN {statements} END IF; END $$"
    )


def upgrade() -> None:
    _set_compression("lz4")


def downgrade() -> None:
    _set_compression("pglz")
