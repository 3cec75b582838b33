"""Ordering and billing as `make run` starts them (embedded PostgreSQL and broker, one process each):
two orders complete, billing charges them from their events on the broker, a bill on demand bills the
charges, and billing's own events reach the broker."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from ordering.samples import broadband_order, mobile_order
from switchboard_dev.launcher import Suite
from tests.scratch import scratch_dir

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

CENT = Decimal("0.01")


async def wait_for(predicate: Any, what: str, limit_s: float = 60.0) -> Any:
    async with asyncio.timeout(limit_s):
        while not (result := await predicate()):
            await asyncio.sleep(0.2)
    assert result, what
    return result


async def read_topic(bootstrap: str, topic: str, key: str, count: int) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=f"e2e-{uuid.uuid4()}"
    )
    await consumer.start()
    found: list[Any] = []
    try:
        async with asyncio.timeout(30):
            while len(found) < count:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    found.extend(r for r in records if r.key == key.encode())
    finally:
        await consumer.stop()
    return [orjson.loads(r.value) for r in found]


def expected_charge(price: dict[str, Any], completed: date) -> Decimal:
    """What billing must charge for one order price, worked out here independently: a one-off price
    in full, a recurring one for the days from completion to the 1st of next month (cycle day 1),
    half-even to the cent."""
    amount = Decimal(str(price["price"]["dutyFreeAmount"]["value"]))
    if price["priceType"] != "recurring":
        return amount
    start = completed.replace(day=1)
    end = date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return (amount * (end - completed).days / (end - start).days).quantize(CENT, ROUND_HALF_EVEN)


async def test_completed_orders_are_charged_and_billed_on_demand(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    env = {
        "ORDERING_PROVISIONING_DELAY_SECONDS": "0.5",
        "ORDERING_WORKER_POLL_INTERVAL": "0.1",
        "BILLING_WORKER_POLL_INTERVAL": "0.1",
    }
    account = f"BA-E2E-{uuid.uuid4().hex[:6]}"
    with scratch_dir("switchboard-e2e-billing-") as data_dir:
        async with Suite.ephemeral(data_dir, ["ordering", "billing"], env=env) as suite:
            orders_api, billing_api = suite.api_urls["ordering"], suite.api_urls["billing"]
            async with httpx.AsyncClient(timeout=10, headers=suite.auth_headers("integration")) as client:
                ready = (await client.get(suite.urls["billing"] + "/health/ready")).json()
                assert ready["consumers"]["billing-orders"]["state"] == "running"
                ids = []
                for body in (broadband_order("CUST-E2E", account), mobile_order("CUST-E2E", account)):
                    created = await client.post(f"{orders_api}/productOrder", json=body)
                    assert created.status_code == 201, created.text
                    ids.append(created.json()["id"])

                async def completed() -> list[dict[str, Any]] | None:
                    orders = [(await client.get(f"{orders_api}/productOrder/{i}")).json() for i in ids]
                    return orders if all(o["state"] == "completed" for o in orders) else None

                orders = await wait_for(completed, "both orders completed")
                expected = sorted(
                    expected_charge(price, datetime.fromisoformat(order["completionDate"]).date())
                    for order in orders
                    for item in order["productOrderItem"]
                    for price in item.get("itemPrice", [])
                )
                assert len(expected) >= 3

                async def charged() -> list[dict[str, Any]] | None:
                    rates = (
                        await client.get(
                            f"{billing_api}/appliedCustomerBillingRate", params={"billingAccount.id": account}
                        )
                    ).json()
                    return rates if len(rates) >= len(expected) else None

                rates = await wait_for(charged, "every price charged from the order events")
                assert sorted(Decimal(str(r["taxExcludedAmount"]["value"])) for r in rates) == expected
                assert all(r["isBilled"] is False for r in rates)

                request = (
                    await client.post(
                        f"{billing_api}/customerBillOnDemand", json={"billingAccount": {"id": account}}
                    )
                ).json()

                async def done() -> dict[str, Any] | None:
                    got = (await client.get(f"{billing_api}/customerBillOnDemand/{request['id']}")).json()
                    return got if got["state"] != "inProgress" else None

                finished = await wait_for(done, "the bill on demand finished")
                assert finished["state"] == "done", finished
                bill = (
                    await client.get(f"{billing_api}/customerBill/{finished['customerBill']['id']}")
                ).json()
                assert Decimal(str(bill["taxExcludedAmount"]["value"])) == sum(expected)
                assert bill["amountDue"] == bill["taxIncludedAmount"]
                assert (bill["state"], bill["runType"]) == ("sent", "offCycle")
                billed = (
                    await client.get(
                        f"{billing_api}/appliedCustomerBillingRate", params={"bill.id": bill["id"]}
                    )
                ).json()
                assert len(billed) == len(expected)

            bootstrap = suite.bootstrap or ""
            bill_events = await read_topic(bootstrap, "tmf678.customerBill", bill["id"], 3)
            assert [(e["eventType"], e["event"]["customerBill"]["state"]) for e in bill_events] == [
                ("CustomerBillCreateEvent", "new"),
                ("CustomerBillStateChangeEvent", "validated"),
                ("CustomerBillStateChangeEvent", "sent"),
            ]
            request_events = await read_topic(bootstrap, "tmf678.customerBillOnDemand", request["id"], 2)
            assert [e["event"]["customerBillOnDemand"]["state"] for e in request_events] == [
                "inProgress",
                "done",
            ]
