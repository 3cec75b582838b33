"""Demo data for `make run`: a few customers' orders, created through the public API when it is empty."""

from __future__ import annotations

import httpx

from .samples import broadband_order, mobile_order

BASE_PATH = "/tmf-api/productOrderingManagement/v4"

CUSTOMERS = [("CUST-1001", "BA-1001"), ("CUST-1002", "BA-1002"), ("CUST-1003", "BA-1003")]


async def seed(base_url: str, headers: dict[str, str]) -> None:
    """Creates demo orders unless the service already holds some (a second `make run` keeps its data).
    ``headers`` carry the bearer token the launcher's local issuer signed."""
    url = base_url.rstrip("/") + BASE_PATH
    async with httpx.AsyncClient(timeout=10, headers=headers) as client:
        existing = await client.get(f"{url}/productOrder", params={"limit": 1})
        existing.raise_for_status()
        if int(existing.headers.get("X-Total-Count", "0")) > 0:
            return
        for customer, account in CUSTOMERS:
            for body in (broadband_order(customer, account), mobile_order(customer, account)):
                response = await client.post(
                    f"{url}/productOrder",
                    json=body,
                    headers={
                        "Idempotency-Key": f"seed-{customer}-{body['productOrderItem'][0]['productOffering']['id']}"
                    },
                )
                response.raise_for_status()
        # One order that fails validation, so the demo shows a rejected order with its problems listed.
        bad = broadband_order("CUST-1003", "BA-1003")
        bad["productOrderItem"][0]["product"]["place"][0]["postcode"] = "NOT A POSTCODE"
        response = await client.post(
            f"{url}/productOrder", json=bad, headers={"Idempotency-Key": "seed-rejected"}
        )
        response.raise_for_status()
