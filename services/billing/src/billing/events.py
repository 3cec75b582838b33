"""TMF678 events: the topics, event types and envelopes of CustomerBill and CustomerBillOnDemand."""

from __future__ import annotations

from switchboard_kit.resource import Events

DOMAIN = "customerBillManagement"
BILL_TOPIC = "tmf678.customerBill"
ON_DEMAND_TOPIC = "tmf678.customerBillOnDemand"
TOPICS = [BILL_TOPIC, ON_DEMAND_TOPIC]

BILL_EVENTS = ("CustomerBillCreateEvent", "CustomerBillStateChangeEvent")
ON_DEMAND_EVENTS = ("CustomerBillOnDemandCreateEvent", "CustomerBillOnDemandStateChangeEvent")

BILL = Events(topic=BILL_TOPIC, resource="customerBill", domain=DOMAIN, types=BILL_EVENTS)
ON_DEMAND = Events(
    topic=ON_DEMAND_TOPIC, resource="customerBillOnDemand", domain=DOMAIN, types=ON_DEMAND_EVENTS
)
# Rates and accounts publish no events yet (their events are not in the TMF678 registry); the
# declarations still name where they would go.
RATE = Events(
    topic="tmf678.appliedCustomerBillingRate", resource="appliedCustomerBillingRate", domain=DOMAIN, types=()
)
ACCOUNT = Events(topic="tmf678.billingAccount", resource="billingAccount", domain=DOMAIN, types=())
