"""documents stored as the compact JSON text the service wrote, outbox events as json

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 18:10:00

The kit's document tables keep ``doc`` as ``json`` (the text the store wrote, sent as it is) and the
outbox its events as ``json``; ordering's revisions 0007 and 0008 say why.
"""

from collections.abc import Sequence

from switchboard_kit.migrations import documents_to_json, documents_to_jsonb, outbox_to_json, outbox_to_jsonb

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("payment", "refund")


def upgrade() -> None:
    documents_to_json(TABLES)
    outbox_to_json()


def downgrade() -> None:
    outbox_to_jsonb()
    documents_to_jsonb(TABLES)
