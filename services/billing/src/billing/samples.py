"""Completed orders as billing receives them on ``tmf622.productOrder`` (priced as ordering prices
them): the demo data, the tests and the contract tests share them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from switchboard_kit.money import json_number

# (offering id, offering name, price name, priceType, duty-free amount in EUR)
FIBRE_500 = [
    ("PO-FIBRE-500", "Fibre Broadband 500", "Fibre Broadband 500 monthly fee", "recurring", "40.00"),
    ("PO-FIBRE-500", "Fibre Broadband 500", "Fibre installation", "oneTime", "50.00"),
]
ROUTER = [("PO-ROUTER-WIFI6", "Wi-Fi 6 router", "Wi-Fi 6 router", "oneTime", "99.00")]
SIM_ONLY = [("PO-MOBILE-SIMO-20GB", "SIM-only 20GB", "SIM-only 20GB monthly fee", "recurring", "10.00")]


def _price(name: str, price_type: str, duty_free: str, tax_rate: Decimal = Decimal(21)) -> dict[str, Any]:
    amount = Decimal(duty_free)
    price: dict[str, Any] = {
        "@type": "OrderPrice",
        "name": name,
        "priceType": price_type,
        "price": {
            "@type": "Price",
            "dutyFreeAmount": {"unit": "EUR", "value": json_number(amount)},
            "taxIncludedAmount": {
                "unit": "EUR",
                "value": json_number((amount * (1 + tax_rate / 100)).quantize(Decimal("0.01"))),
            },
            "taxRate": json_number(tax_rate),
        },
    }
    if price_type == "recurring":
        price["recurringChargePeriod"] = "month"
    return price


def completed_order(
    order_id: str,
    account_id: str,
    customer_id: str,
    items: list[list[tuple[str, str, str, str, str]]],
    *,
    completed_at: str = "2026-11-16T10:00:00Z",
    state: str = "completed",
) -> dict[str, Any]:
    """A productOrder in ``state``: one item per entry of ``items``, each with its prices."""
    order_items = []
    for n, prices in enumerate(items, start=1):
        offering_id, offering_name = prices[0][0], prices[0][1]
        order_items.append(
            {
                "id": str(n),
                "action": "add",
                "quantity": 1,
                "state": state,
                "@type": "ProductOrderItem",
                "productOffering": {
                    "id": offering_id,
                    "name": offering_name,
                    "@referredType": "ProductOffering",
                },
                "itemPrice": [_price(name, kind, amount) for _, _, name, kind, amount in prices],
            }
        )
    order: dict[str, Any] = {
        "id": order_id,
        "href": f"http://orders.example/productOrder/{order_id}",
        "@type": "ProductOrder",
        "state": state,
        "orderDate": "2026-11-16T09:00:00Z",
        "billingAccount": {"id": account_id, "@referredType": "BillingAccount"},
        "relatedParty": [{"id": customer_id, "role": "customer", "@referredType": "Individual"}],
        "productOrderItem": order_items,
    }
    if state == "completed":
        order["completionDate"] = completed_at
    return order


def order_event(
    order: dict[str, Any], event_id: str, *, event_type: str = "ProductOrderStateChangeEvent"
) -> dict[str, Any]:
    """The envelope ordering publishes for ``order``."""
    return {
        "eventId": event_id,
        "eventTime": order.get("completionDate") or order["orderDate"],
        "eventType": event_type,
        "domain": "productOrderingManagement",
        "event": {"productOrder": order},
    }
