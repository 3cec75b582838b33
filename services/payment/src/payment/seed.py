"""Demo data for `make run`: a few payments and a refund, created through the public API when it is empty."""

from __future__ import annotations

import httpx

from .samples import card_payment, refund_of

BASE_PATH = "/tmf-api/paymentManagement/v4"

# The customers and billing accounts ordering's demo data uses.
CUSTOMERS = [("CUST-1001", "BA-1001"), ("CUST-1002", "BA-1002"), ("CUST-1003", "BA-1003")]


async def seed(base_url: str, headers: dict[str, str]) -> None:
    """One captured card payment per customer, a partial refund of the first, and one declined card.
    ``headers`` carry the bearer token the launcher's local issuer signed."""
    url = base_url.rstrip("/") + BASE_PATH
    async with httpx.AsyncClient(timeout=30, headers=headers) as client:
        existing = await client.get(f"{url}/payment", params={"limit": 1})
        existing.raise_for_status()
        if int(existing.headers.get("X-Total-Count", "0")) > 0:
            return
        payments = []
        for customer, account in CUSTOMERS:
            response = await client.post(
                f"{url}/payment",
                json=card_payment(account, customer, 12.1),
                headers={"Idempotency-Key": f"seed-{customer}"},
            )
            response.raise_for_status()
            payments.append(response.json())
        response = await client.post(
            f"{url}/refund", json=refund_of(payments[0], 2.1), headers={"Idempotency-Key": "seed-refund"}
        )
        response.raise_for_status()
        declined = card_payment("BA-1003", "CUST-1003", 30, token="tok_decline")
        response = await client.post(
            f"{url}/payment", json=declined, headers={"Idempotency-Key": "seed-declined"}
        )
        response.raise_for_status()
