"""documents stored as the compact JSON text the service wrote

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 17:00:00

``doc`` becomes PostgreSQL ``json``, which keeps the text it was given: a read sends the stored text as
it is, where ``jsonb`` came back printed with spaces and every answer was decoded and encoded again
(issue #8: about 20 us of the service's CPU per document of a list). Filters read ``doc::jsonb``, and
the GIN index is rebuilt on that expression. The stored documents are rewritten compact, and a trigger
(``switchboard_kit.db.document_ddl``) compacts what other writers store. The column keeps lz4 (0002).
"""

from collections.abc import Sequence

from switchboard_kit.migrations import documents_to_json, documents_to_jsonb

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("product_order", "cancel_product_order")


def upgrade() -> None:
    documents_to_json(TABLES)


def downgrade() -> None:
    documents_to_jsonb(TABLES)
