"""Realistic order payloads: demo seed data, tests and benchmarks share them."""

from __future__ import annotations

from typing import Any


def broadband_order(customer_id: str = "CUST-1001", billing_account_id: str = "BA-1001") -> dict[str, Any]:
    """A two-item order: Fibre 500 with an installation address in London, plus a Wi-Fi 6 router."""
    return {
        "@type": "ProductOrder",
        "category": "residential",
        "description": "Fibre 500 broadband with router",
        "externalId": f"WEB-{customer_id}",
        "priority": "4",
        "requestedStartDate": "2026-12-01T09:00:00.000Z",
        "channel": [{"id": "web", "name": "Online shop", "role": "salesChannel", "@referredType": "Channel"}],
        "billingAccount": {"id": billing_account_id, "@referredType": "BillingAccount"},
        "relatedParty": [
            {"id": customer_id, "name": "Jane Doe", "role": "customer", "@referredType": "Individual"},
        ],
        "note": [{"author": "Jane Doe", "text": "Please call before the engineer visits."}],
        "productOrderItem": [
            {
                "id": "1",
                "action": "add",
                "quantity": 1,
                "@type": "ProductOrderItem",
                "productOffering": {
                    "id": "PO-FIBRE-500",
                    "name": "Fibre 500",
                    "@referredType": "ProductOffering",
                },
                "product": {
                    "@type": "Product",
                    "isBundle": False,
                    "productCharacteristic": [
                        {"name": "downloadSpeed", "valueType": "string", "value": "500Mbps"},
                        {"name": "staticIp", "valueType": "boolean", "value": False},
                    ],
                    "place": [
                        {
                            "role": "installationAddress",
                            "@type": "GeographicAddress",
                            "streetNr": "10",
                            "streetName": "Downing Street",
                            "city": "London",
                            "postcode": "SW1A 2AA",
                            "country": "GB",
                        }
                    ],
                },
            },
            {
                "id": "2",
                "action": "add",
                "quantity": 1,
                "@type": "ProductOrderItem",
                "productOffering": {
                    "id": "PO-ROUTER-WIFI6",
                    "name": "Wi-Fi 6 router",
                    "@referredType": "ProductOffering",
                },
                "productOrderItemRelationship": [{"id": "1", "relationshipType": "reliesOn"}],
            },
        ],
    }


def mobile_order(customer_id: str, billing_account_id: str) -> dict[str, Any]:
    return {
        "billingAccount": {"id": billing_account_id},
        "relatedParty": [{"id": customer_id, "role": "customer", "@referredType": "Individual"}],
        "productOrderItem": [
            {
                "id": "1",
                "action": "add",
                "productOffering": {"id": "PO-MOBILE-SIMO-20GB"},
                "product": {"productCharacteristic": [{"name": "simType", "value": "eSIM"}]},
            }
        ],
    }
