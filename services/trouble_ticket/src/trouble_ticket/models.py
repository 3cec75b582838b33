"""Tables: the TMF document as JSONB next to indexed columns for the hot attributes."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from switchboard_kit.db import document_table, kit_tables, new_metadata

metadata = new_metadata()
kit = kit_tables(metadata)

# next_action_at: when the next SLA warning or breach of the ticket falls due (NULL while its clocks
# are paused or have nothing left to fire). sla: the clocks' state (server-internal, not served).
trouble_ticket = document_table(
    "trouble_ticket",
    metadata,
    Column("status", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("ticket_type", Text, nullable=False),
    Column("creation_date", DateTime(timezone=True), nullable=False),
    Column("party_ids", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("sla", JSONB, nullable=True),
    Index("ix_trouble_ticket_status", "status"),
    Index("ix_trouble_ticket_creation_date", "creation_date"),
    Index("ix_trouble_ticket_party_ids", "party_ids", postgresql_using="gin"),
    due=True,
)
