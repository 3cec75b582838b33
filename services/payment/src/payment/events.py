"""TMF676 events: the topics, event types and envelopes of Payment and Refund."""

from __future__ import annotations

from switchboard_kit.resource import Events

DOMAIN = "paymentManagement"
PAYMENT_TOPIC = "tmf676.payment"
REFUND_TOPIC = "tmf676.refund"
TOPICS = [PAYMENT_TOPIC, REFUND_TOPIC]

PAYMENT_EVENTS = ("PaymentCreateEvent", "PaymentStateChangeEvent")
REFUND_EVENTS = ("RefundCreateEvent", "RefundStateChangeEvent")

PAYMENT = Events(topic=PAYMENT_TOPIC, resource="payment", domain=DOMAIN, types=PAYMENT_EVENTS)
REFUND = Events(topic=REFUND_TOPIC, resource="refund", domain=DOMAIN, types=REFUND_EVENTS)
