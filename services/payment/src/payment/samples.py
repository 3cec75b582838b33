"""Example payment and refund bodies (the demo data, the README, tests)."""

from __future__ import annotations

from typing import Any


def card_payment(
    account: str = "BA-1001",
    payer: str = "CUST-1001",
    value: float = 12.1,
    token: str = "tok_visa",
    unit: str = "EUR",
) -> dict[str, Any]:
    return {
        "account": {"id": account, "@referredType": "BillingAccount"},
        "payer": {"id": payer, "role": "customer", "@referredType": "Individual"},
        "paymentMethod": {"@type": "tokenizedCard", "token": token},
        "totalAmount": {"unit": unit, "value": value},
        "channel": {"id": "web", "name": "web"},
        "description": "Card payment",
    }


def refund_of(payment: dict[str, Any], value: float | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "account": {"id": payment["account"]["id"]},
        "payment": {"id": payment["id"]},
        "paymentMethod": payment["paymentMethod"],
        "description": "Refund",
    }
    # An empty totalAmount (the spec requires the attribute) refunds all that is left of the payment.
    body["totalAmount"] = {} if value is None else {"unit": payment["totalAmount"]["unit"], "value": value}
    return body
