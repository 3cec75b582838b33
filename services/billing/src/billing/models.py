"""Tables: each TMF document as JSONB next to the indexed columns its filters, bill runs and charges use."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, DateTime, Index, Integer, Numeric, Table, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from switchboard_kit.db import document_table, kit_tables, new_metadata

metadata = new_metadata()
kit = kit_tables(metadata)

# The billing accounts billing knows (learned from orders, or seeded): read-only at the API.
billing_account = document_table(
    "billing_account",
    metadata,
    Column("status", Text, nullable=False),
    Column("currency", Text, nullable=False),
    Column("bill_cycle_day", Integer, nullable=False),
    # The next cycle date not yet billed: a bill run bills the accounts whose date has come.
    Column("next_cycle_date", Date, nullable=False),
    Index("ix_billing_account_next_cycle_date", "next_cycle_date"),
)

# held_from: the state an onHold bill returns to when the hold ends.
# cycle_key: "<account>:<cycle date>" of an onCycle bill; unique, so a period is billed once.
customer_bill = document_table(
    "customer_bill",
    metadata,
    Column("state", Text, nullable=False),
    Column("account_id", Text, nullable=False),
    Column("bill_date", DateTime(timezone=True), nullable=False),
    Column("party_ids", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("held_from", Text),
    Column("cycle_key", Text),
    Index("ix_customer_bill_state", "state"),
    Index("ix_customer_bill_account_id", "account_id"),
    Index("ix_customer_bill_bill_date", "bill_date"),
    Index("ix_customer_bill_party_ids", "party_ids", postgresql_using="gin"),
    Index("uq_customer_bill_cycle_key", "cycle_key", unique=True),
)

# next_action_at: when the scheduler makes the requested bill (due work).
customer_bill_on_demand = document_table(
    "customer_bill_on_demand",
    metadata,
    Column("state", Text, nullable=False),
    Column("account_id", Text),
    Index("ix_customer_bill_on_demand_state", "state"),
    due=True,
)

# source_key: what the charge is for ("<order>:<item>:<price>:<period start>"); unique, so an order's
# charges are made once however often its events arrive.
applied_customer_billing_rate = document_table(
    "applied_customer_billing_rate",
    metadata,
    Column("is_billed", Boolean, nullable=False),
    Column("account_id", Text, nullable=False),
    Column("bill_id", Text),
    Column("charge_date", DateTime(timezone=True), nullable=False),
    Column("source_key", Text),
    Index(
        "ix_applied_customer_billing_rate_unbilled",
        "account_id",
        "charge_date",
        postgresql_where=text("NOT is_billed"),
    ),
    Index("ix_applied_customer_billing_rate_bill_id", "bill_id"),
    Index("uq_applied_customer_billing_rate_source_key", "source_key", unique=True),
)

# A recurring price of a completed order item: each bill run charges its next period in advance
# (next_period_start) until ended_at.
recurring_charge = Table(
    "recurring_charge",
    metadata,
    Column("id", Text, primary_key=True),  # "<order>:<item>:<price index>"
    Column("account_id", Text, nullable=False),
    Column("rate", JSONB, nullable=False),  # the rate document each period's rate is made from
    Column("amount", Numeric, nullable=False),  # a whole period's amount, tax excluded
    Column("currency", Text, nullable=False),
    Column("next_period_start", Date, nullable=False),
    Column("ended_at", Date),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_recurring_charge_account_id", "account_id"),
)
