"""TMF622 events: the topics, event types and envelopes of ProductOrder and CancelProductOrder."""

from __future__ import annotations

from typing import Any

from switchboard_kit.resource import Events

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


def _cancel_key(cancel: dict[str, Any]) -> str:
    # Keyed by the order id, so a cancellation's events share the order's partition order.
    return str((cancel.get("productOrder") or {}).get("id") or cancel["id"])


ORDER = Events(topic=ORDER_TOPIC, resource="productOrder", domain=DOMAIN, types=ORDER_EVENTS)
CANCEL = Events(
    topic=CANCEL_TOPIC, resource="cancelProductOrder", domain=DOMAIN, types=CANCEL_EVENTS, key=_cancel_key
)
