"""Tables: the TMF document as JSONB next to indexed columns for the hot attributes."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, Table, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from switchboard_kit.db import kit_tables, new_metadata

metadata = new_metadata()
kit = kit_tables(metadata)

product_order = Table(
    "product_order",
    metadata,
    Column("id", Text, primary_key=True),
    Column("doc", JSONB, nullable=False),
    Column("state", Text, nullable=False),
    Column("order_date", DateTime(timezone=True), nullable=False),
    Column("party_ids", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("version", Integer, nullable=False, server_default=text("1")),
    # The X-Correlation-ID of the request that created the order: events the worker emits later carry it.
    Column("correlation_id", Text),
    # When the fulfilment worker should next look at the order; NULL when it has nothing to do.
    Column("next_action_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_product_order_state", "state"),
    Index("ix_product_order_order_date", "order_date"),
    Index("ix_product_order_party_ids", "party_ids", postgresql_using="gin"),
    Index("ix_product_order_doc", "doc", postgresql_using="gin", postgresql_ops={"doc": "jsonb_path_ops"}),
    Index(
        "ix_product_order_next_action", "next_action_at", postgresql_where=text("next_action_at IS NOT NULL")
    ),
)

cancel_product_order = Table(
    "cancel_product_order",
    metadata,
    Column("id", Text, primary_key=True),
    Column("doc", JSONB, nullable=False),
    Column("state", Text, nullable=False),
    Column("order_id", Text, nullable=False),
    Column("version", Integer, nullable=False, server_default=text("1")),
    Column("correlation_id", Text),
    Column("next_action_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_cancel_product_order_order_id", "order_id"),
    Index(
        "ix_cancel_product_order_doc", "doc", postgresql_using="gin", postgresql_ops={"doc": "jsonb_path_ops"}
    ),
    Index(
        "ix_cancel_product_order_next_action",
        "next_action_at",
        postgresql_where=text("next_action_at IS NOT NULL"),
    ),
)
