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

from alembic import op

from switchboard_kit.db import document_ddl

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("product_order", "cancel_product_order")


def _lz4(table: str) -> None:
    op.execute(
        "DO $$ BEGIN "
        "IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)) "
        f"THEN ALTER TABLE {table} ALTER COLUMN doc SET COMPRESSION lz4; END IF; END $$"
    )


def _raw(statement: str) -> None:
    """As written (not as a SQLAlchemy text() whose ":name"s would be bind parameters)."""
    op.get_bind().exec_driver_sql(statement)


def upgrade() -> None:
    for table in TABLES:
        ddl = document_ddl(table)
        for statement in ddl[:-1]:  # the functions
            _raw(statement)
        op.execute(f"DROP INDEX ix_{table}_doc")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN doc TYPE json USING sb_compact_json(doc::json)")
        _lz4(table)
        op.execute(f"CREATE INDEX ix_{table}_doc ON {table} USING gin ((CAST(doc AS JSONB)) jsonb_path_ops)")
        _raw(ddl[-1])  # the trigger


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER {table}_compact_doc ON {table}")
        op.execute(f"DROP INDEX ix_{table}_doc")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN doc TYPE jsonb USING doc::jsonb")
        _lz4(table)
        op.execute(f"CREATE INDEX ix_{table}_doc ON {table} USING gin (doc jsonb_path_ops)")
    op.execute("DROP FUNCTION sb_compact_doc()")
    op.execute("DROP FUNCTION sb_compact_json(json)")
