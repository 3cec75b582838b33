"""TMF622 events: envelopes for ProductOrder and CancelProductOrder, written to the outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from switchboard_kit import events as kit_events

from .models import kit

DOMAIN = "productOrderingManagement"
ORDER_TOPIC = "tmf622.productOrder"
CANCEL_TOPIC = "tmf622.cancelProductOrder"
TOPICS = [ORDER_TOPIC, CANCEL_TOPIC]

ORDER_EVENTS = (
    "ProductOrderCreateEvent",
    "ProductOrderAttributeValueChangeEvent",
    "ProductOrderStateChangeEvent",
    "ProductOrderDeleteEvent",
    "ProductOrderInformationRequiredEvent",
)
CANCEL_EVENTS = (
    "CancelProductOrderCreateEvent",
    "CancelProductOrderStateChangeEvent",
    "CancelProductOrderInformationRequiredEvent",
)


def order_envelope(event_type: str, order: dict[str, Any], **kw: Any) -> dict[str, Any]:
    assert event_type in ORDER_EVENTS, event_type
    return kit_events.envelope(event_type, "productOrder", order, domain=DOMAIN, **kw)


async def order_event(
    session: AsyncSession, event_type: str, order: dict[str, Any], **kw: Any
) -> dict[str, Any]:
    event = order_envelope(event_type, order, **kw)
    await kit_events.record(session, kit.outbox, topic=ORDER_TOPIC, key=order["id"], event=event)
    return event


def order_rows(
    changes: list[tuple[str, dict[str, Any]]], *, at: datetime | None = None
) -> list[dict[str, Any]]:
    """Outbox rows of several events of one order, in this order, all at ``at`` (default: now)."""
    at = at or kit_events.utc_now()
    return [
        kit_events.outbox_row(ORDER_TOPIC, order["id"], order_envelope(event_type, order, at=at))
        for event_type, order in changes
    ]


async def cancel_event(
    session: AsyncSession, event_type: str, cancel: dict[str, Any], **kw: Any
) -> dict[str, Any]:
    assert event_type in CANCEL_EVENTS, event_type
    event = kit_events.envelope(event_type, "cancelProductOrder", cancel, domain=DOMAIN, **kw)
    # Keyed by the order id, so a cancellation's events share the order's partition order.
    key = (cancel.get("productOrder") or {}).get("id") or cancel["id"]
    await kit_events.record(session, kit.outbox, topic=CANCEL_TOPIC, key=key, event=event)
    return event
