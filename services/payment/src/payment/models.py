"""Tables: each TMF document as JSONB next to the indexed columns filters, sort and the refund check use."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Numeric, Text, text
from sqlalchemy.dialects.postgresql import ARRAY

from switchboard_kit.db import document_table, kit_tables, new_metadata

metadata = new_metadata()
kit = kit_tables(metadata)

# next_action_at: when reconciliation next asks the gateway about a payment whose answer is unknown.
payment = document_table(
    "payment",
    metadata,
    Column("status", Text, nullable=False),
    Column("payment_date", DateTime(timezone=True), nullable=False),
    Column("account_id", Text, nullable=False),
    Column("party_ids", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    # What the gateway captured (NULL until then), in the payment's currency.
    Column("captured_amount", Numeric),
    Column("currency", Text),
    Index("ix_payment_status", "status"),
    Index("ix_payment_payment_date", "payment_date"),
    Index("ix_payment_account_id", "account_id"),
    Index("ix_payment_party_ids", "party_ids", postgresql_using="gin"),
    due=True,
)

refund = document_table(
    "refund",
    metadata,
    Column("status", Text, nullable=False),
    Column("refund_date", DateTime(timezone=True), nullable=False),
    Column("payment_id", Text, nullable=False),
    Column("account_id", Text, nullable=False),
    # The amount this refund takes off its payment (counted until it is denied or failed).
    Column("amount", Numeric, nullable=False),
    Index("ix_refund_status", "status"),
    Index("ix_refund_payment_id", "payment_id"),
    Index("ix_refund_account_id", "account_id"),
    due=True,
)
