"""Alembic steps that several services' migrations share (call them from a revision's upgrade/downgrade).

- :func:`documents_to_json` / :func:`documents_to_jsonb`: a resource table's ``doc`` as PostgreSQL
  ``json`` (the compact text the store wrote, sent as it is; see :func:`switchboard_kit.db.document_table`)
  or back to ``jsonb``. The GIN index follows (on ``doc::jsonb`` for ``json``), and so does the trigger
  that compacts other writers' text.
- :func:`outbox_to_json` / :func:`outbox_to_jsonb`: the outbox's ``payload`` and ``headers``.

Every column keeps lz4 where the server offers it.
"""

from __future__ import annotations

from collections.abc import Iterable

from alembic import op

from .db import document_ddl

__all__ = ["documents_to_json", "documents_to_jsonb", "outbox_to_json", "outbox_to_jsonb"]


def _lz4(table: str, column: str) -> None:
    op.execute(
        "DO $$ BEGIN "
        "IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)) "
        f"THEN ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION lz4; END IF; END $$"
    )


def _raw(statement: str) -> None:
    """As written (not as a SQLAlchemy text() whose ":name"s would be bind parameters)."""
    op.get_bind().exec_driver_sql(statement)


def documents_to_json(tables: Iterable[str]) -> None:
    for table in tables:
        ddl = document_ddl(table)
        for statement in ddl[:-1]:  # the functions (CREATE OR REPLACE)
            _raw(statement)
        op.execute(f"DROP INDEX ix_{table}_doc")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN doc TYPE json USING sb_compact_json(doc::json)")
        _lz4(table, "doc")
        op.execute(f"CREATE INDEX ix_{table}_doc ON {table} USING gin ((CAST(doc AS JSONB)) jsonb_path_ops)")
        _raw(ddl[-1])  # the trigger


def documents_to_jsonb(tables: Iterable[str], *, drop_functions: bool = True) -> None:
    for table in tables:
        op.execute(f"DROP TRIGGER {table}_compact_doc ON {table}")
        op.execute(f"DROP INDEX ix_{table}_doc")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN doc TYPE jsonb USING doc::jsonb")
        _lz4(table, "doc")
        op.execute(f"CREATE INDEX ix_{table}_doc ON {table} USING gin (doc jsonb_path_ops)")
    if drop_functions:
        op.execute("DROP FUNCTION sb_compact_doc()")
        op.execute("DROP FUNCTION sb_compact_json(json)")


def _outbox(to: str) -> None:
    op.execute(
        f"ALTER TABLE outbox ALTER COLUMN payload TYPE {to} USING payload::{to}, "
        "ALTER COLUMN headers DROP DEFAULT, "
        f"ALTER COLUMN headers TYPE {to} USING headers::{to}, "
        f"ALTER COLUMN headers SET DEFAULT '{{}}'::{to}"
    )
    _lz4("outbox", "payload")


def outbox_to_json() -> None:
    """The outbox's events as ``json``: nothing queries into them, and ``jsonb`` built a binary copy of
    each (the whole resource, once per event) that nothing read."""
    _outbox("json")


def outbox_to_jsonb() -> None:
    _outbox("jsonb")
