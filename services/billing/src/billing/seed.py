"""Demo data for `make run`, through the public API: bills of the demo customers' charges.

Ordering's seed places the demo orders, which complete a few seconds after start; billing charges them
from their events (learning the accounts BA-1001, BA-1002 and BA-1003). This seed then asks for a bill
now for two of the accounts (both end ``sent``), puts the second one ``onHold``, and leaves the third
account's charges unbilled, so the conformance kit and a newcomer find bills in several states, billed
and unbilled rates. A service that already holds bills is left alone (a second `make run`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

BASE_PATH = "/tmf-api/customerBillManagement/v4"
WAIT_FOR_CHARGES = 30.0  # seconds: ordering's demo orders complete about two seconds after start
BILLED_ACCOUNTS = 2

log = logging.getLogger("billing.seed")


async def _poll(
    client: httpx.AsyncClient, url: str, done: Callable[[Any], bool], *, seconds: float, **params: str
) -> Any:
    """GETs ``url`` every half second until ``done(body)`` or ``seconds`` pass; the last body."""
    deadline = time.monotonic() + seconds
    while True:
        response = await client.get(url, params=params)
        response.raise_for_status()
        body = response.json()
        if done(body) or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.5)


async def seed(base_url: str, headers: dict[str, str]) -> None:
    """Bills on demand for the demo accounts billing learned from ordering's demo orders."""
    url = base_url.rstrip("/") + BASE_PATH
    async with httpx.AsyncClient(timeout=10, headers=headers) as client:
        existing = await client.get(f"{url}/customerBill", params={"limit": 1})
        existing.raise_for_status()
        if int(existing.headers.get("X-Total-Count", "0")) > 0:
            return
        listed = await _poll(
            client,
            f"{url}/billingAccount",
            lambda body: len(body) > BILLED_ACCOUNTS,
            seconds=WAIT_FOR_CHARGES,
            fields="id",
        )
        accounts = sorted(a["id"] for a in listed)
        if not accounts:
            log.warning("no charges arrived from ordering's demo orders: no demo bills")
            return
        bills = []
        for account in accounts[:BILLED_ACCOUNTS]:
            created = await client.post(
                f"{url}/customerBillOnDemand",
                json={"billingAccount": {"id": account}, "description": "Demo bill"},
                headers={"Idempotency-Key": f"seed-bill-{account}"},
            )
            created.raise_for_status()
            finished = await _poll(
                client,
                f"{url}/customerBillOnDemand/{created.json()['id']}",
                lambda body: body.get("state") != "inProgress",
                seconds=WAIT_FOR_CHARGES,
            )
            bill = finished.get("customerBill")
            if isinstance(bill, dict):
                bills.append(str(bill["id"]))
        if len(bills) > 1:
            held = await client.patch(f"{url}/customerBill/{bills[1]}", json={"state": "onHold"})
            held.raise_for_status()
