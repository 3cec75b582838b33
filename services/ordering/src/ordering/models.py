"""Tables: the TMF document as JSONB next to indexed columns for the hot attributes."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Text, text
from sqlalchemy.dialects.postgresql import ARRAY

from switchboard_kit.db import document_table, kit_tables, new_metadata

metadata = new_metadata()
kit = kit_tables(metadata)

# next_action_at: when the fulfilment worker should next look at the order.
product_order = document_table(
    "product_order",
    metadata,
    Column("state", Text, nullable=False),
    Column("order_date", DateTime(timezone=True), nullable=False),
    Column("party_ids", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Index("ix_product_order_state", "state"),
    Index("ix_product_order_order_date", "order_date"),
    Index("ix_product_order_party_ids", "party_ids", postgresql_using="gin"),
    due=True,
)

cancel_product_order = document_table(
    "cancel_product_order",
    metadata,
    Column("state", Text, nullable=False),
    Column("order_id", Text, nullable=False),
    Index("ix_cancel_product_order_order_id", "order_id"),
    due=True,
    updated_at=False,
)
