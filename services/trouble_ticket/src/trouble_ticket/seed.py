"""Demo data for `make run`: tickets in several statuses, created and moved through the public API
when the service is empty."""

from __future__ import annotations

from typing import Any

import httpx

BASE_PATH = "/tmf-api/troubleTicket/v4"


def _ticket(customer: str, description: str, severity: str, ticket_type: str) -> dict[str, Any]:
    return {
        "description": description,
        "severity": severity,
        "ticketType": ticket_type,
        "relatedParty": [{"id": customer, "role": "customer", "@referredType": "Individual"}],
        "channel": {"id": "CH-PHONE", "name": "phone"},
        "note": [{"author": "care", "text": "Opened on a call with the customer."}],
    }


# (key, ticket, the status changes to make after creating it, each with its reason)
SEED: list[tuple[str, dict[str, Any], list[tuple[str, str]]]] = [
    ("fibre-down", _ticket("CUST-1001", "No internet since this morning", "Critical", "connectivity"), []),
    (
        "router-reboots",
        _ticket("CUST-1001", "Router reboots every hour", "Major", "device"),
        [("inProgress", "Diagnostics started")],
    ),
    (
        "slow-tv",
        _ticket("CUST-1002", "TV add-on buffers in the evening", "Minor", "service"),
        [("inProgress", "Line test booked"), ("pending", "Waiting for the customer's test results")],
    ),
    (
        "bill-complaint",
        _ticket("CUST-1002", "Charged twice for the router this month", "Major", "billing"),
        [("inProgress", "Passed to billing"), ("held", "Billing checks the invoice run")],
    ),
    (
        "sim-swap",
        _ticket("CUST-1003", "eSIM profile does not download", "High", "device"),
        [("inProgress", "Profile re-issued"), ("resolved", "Profile downloaded")],
    ),
    (
        "old-fault",
        _ticket("CUST-1003", "Intermittent drops last week", "Low", "connectivity"),
        [("inProgress", "Checked"), ("resolved", "Line card replaced"), ("closed", "Customer confirmed")],
    ),
    (
        "duplicate",
        _ticket("CUST-1003", "Same as the previous ticket", "Low", "connectivity"),
        [("rejected", "Duplicate")],
    ),
]


async def seed(base_url: str, headers: dict[str, str]) -> None:
    """Creates the demo tickets unless the service already holds some (a second `make run` keeps its
    data). ``headers`` carry the bearer token the launcher's local issuer signed."""
    url = base_url.rstrip("/") + BASE_PATH
    async with httpx.AsyncClient(timeout=10, headers=headers) as client:
        existing = await client.get(f"{url}/troubleTicket", params={"limit": 1})
        existing.raise_for_status()
        if int(existing.headers.get("X-Total-Count", "0")) > 0:
            return
        for key, body, moves in SEED:
            created = await client.post(
                f"{url}/troubleTicket", json=body, headers={"Idempotency-Key": f"seed-{key}"}
            )
            created.raise_for_status()
            for status, reason in moves:
                moved = await client.patch(
                    f"{url}/troubleTicket/{created.json()['id']}",
                    json={"status": status, "statusChangeReason": reason},
                )
                moved.raise_for_status()
