"""customerBill: lists and reads of the demo bills, and PATCH of state along the state machine."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from billing import demo
from switchboard_dev import testing

from ..conftest import BILLS, RATES, outbox, service, store

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def demo_client(app: FastAPI, client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    assert await demo.load(store(app), service(app))
    yield client


async def bill_of(client: httpx.AsyncClient, account: str) -> dict:
    listed = await client.get(BILLS, params={"billingAccount.id": account})
    (bill,) = listed.json()
    return bill


class TestRead:
    async def test_the_demo_bills_carry_what_the_conformance_kit_reads(
        self, demo_client: httpx.AsyncClient
    ) -> None:
        response = await demo_client.get(BILLS)
        assert response.status_code == 200
        bills = response.json()
        assert response.headers["X-Total-Count"] == "3"
        assert sorted(b["state"] for b in bills) == ["onHold", "sent", "validated"]
        for bill in bills:
            assert bill["billDocument"][0]["id"]
            assert bill["billingAccount"]["id"].startswith("BA-")
            assert bill["href"].endswith(f"/customerBill/{bill['id']}")

    async def test_fields_keep_id_and_href(self, demo_client: httpx.AsyncClient) -> None:
        for fields in ("id", "href"):
            bills = (await demo_client.get(BILLS, params={"fields": fields})).json()
            assert all(set(b) == {"id", "href"} for b in bills)
        one = (await demo_client.get(BILLS)).json()[0]
        by_id = await demo_client.get(BILLS, params={"id": one["id"]})
        assert by_id.json() == [one]

    async def test_amounts_match_the_hand_computed_bill(self, demo_client: httpx.AsyncClient) -> None:
        # BA-1001, charged 2026-11-16 (cycle day 1, November has 30 days): Fibre 500 monthly 40.00 for
        # 15 of 30 days = 20.00, installation 50.00, router 99.00; VAT 21% per line: 4.20 + 10.50 + 20.79.
        bill = await bill_of(demo_client, "BA-1001")
        assert bill["taxExcludedAmount"] == {"unit": "EUR", "value": 169}
        assert bill["taxItem"][0]["taxAmount"] == {"unit": "EUR", "value": 35.49}
        assert bill["taxIncludedAmount"] == {"unit": "EUR", "value": 204.49}
        assert bill["amountDue"] == bill["remainingAmount"] == bill["taxIncludedAmount"]
        assert bill["billDate"] == "2026-11-16T10:00:00Z"
        assert bill["paymentDueDate"] == "2026-11-30T10:00:00Z"  # 14 days' terms
        assert bill["runType"] == "offCycle"
        rates = (await demo_client.get(RATES, params={"bill.id": bill["id"]})).json()
        assert sorted(r["taxExcludedAmount"]["value"] for r in rates) == [20, 50, 99]
        assert all(r["isBilled"] is True for r in rates)

    async def test_unknown_bill_is_404(self, demo_client: httpx.AsyncClient) -> None:
        response = await demo_client.get(f"{BILLS}/814738f6-4059-4a95-8d34-e859dce29b7c")
        assert response.status_code == 404
        assert response.json()["status"] == "404"

    async def test_a_bill_is_not_created_or_deleted_by_a_client(self, demo_client: httpx.AsyncClient) -> None:
        assert (await demo_client.post(BILLS, json={})).status_code == 405
        bill = (await demo_client.get(BILLS)).json()[0]
        assert (await demo_client.delete(f"{BILLS}/{bill['id']}")).status_code == 405


class TestPatchState:
    async def test_on_hold_as_the_conformance_kit_sends_it(
        self, app: FastAPI, demo_client: httpx.AsyncClient
    ) -> None:
        bill = await bill_of(demo_client, "BA-1001")
        before = len(await outbox(app))
        response = await demo_client.patch(
            f"{BILLS}/{bill['id']}",
            content=b'{"state": "onHold"}',
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 200, response.text
        assert response.json()["state"] == "onHold"
        assert response.json()["billDocument"] == bill["billDocument"]
        events = (await outbox(app))[before:]
        assert [e["event_type"] for e in events] == ["CustomerBillStateChangeEvent"]
        assert events[0]["payload"]["event"]["customerBill"]["state"] == "onHold"

        # The same state again: 200, nothing changes, no event.
        again = await demo_client.patch(f"{BILLS}/{bill['id']}", json={"state": "onHold"})
        assert again.status_code == 200
        assert again.json() == response.json()
        assert len(await outbox(app)) == before + 1

        # The hold ends in the state it interrupted, and only there.
        assert (
            await demo_client.patch(f"{BILLS}/{bill['id']}", json={"state": "validated"})
        ).status_code == 409
        released = await demo_client.patch(f"{BILLS}/{bill['id']}", json={"state": "sent"})
        assert released.status_code == 200
        assert released.json()["state"] == "sent"

    async def test_validated_goes_to_sent(self, demo_client: httpx.AsyncClient) -> None:
        bill = await bill_of(demo_client, "BA-1002")
        assert bill["state"] == "validated"
        assert (await demo_client.patch(f"{BILLS}/{bill['id']}", json={"state": "new"})).status_code == 409
        sent = await demo_client.patch(f"{BILLS}/{bill['id']}", json={"state": "sent"})
        assert sent.status_code == 200
        assert sent.json()["state"] == "sent"

    @pytest.mark.parametrize("state", ["partiallyPaid", "settled", "new", "validated"])
    async def test_other_changes_are_409_and_store_nothing(
        self, app: FastAPI, demo_client: httpx.AsyncClient, state: str
    ) -> None:
        bill = await bill_of(demo_client, "BA-1001")
        before = await outbox(app)
        response = await demo_client.patch(f"{BILLS}/{bill['id']}", json={"state": state})
        assert response.status_code == 409
        assert response.json()["status"] == "409"
        assert (await demo_client.get(f"{BILLS}/{bill['id']}")).json() == bill
        assert await outbox(app) == before

    @pytest.mark.parametrize(
        "body",
        [
            {"amountDue": {"unit": "EUR", "value": 0}},
            {"state": "sent", "billNo": "X"},
            {"state": "paid"},
            {"state": None},
            {"x": 1},
        ],
    )
    async def test_only_state_may_change(self, demo_client: httpx.AsyncClient, body: dict) -> None:
        bill = await bill_of(demo_client, "BA-1001")
        response = await demo_client.patch(f"{BILLS}/{bill['id']}", json=body)
        assert response.status_code == 400, response.text
        assert (await demo_client.get(f"{BILLS}/{bill['id']}")).json() == bill


class TestRoles:
    async def test_a_customer_reads_only_its_own_bills(self, demo_client: httpx.AsyncClient) -> None:
        mine = testing.auth_headers("customer", party="CUST-1001")
        listed = await demo_client.get(BILLS, headers=mine)
        assert [b["billingAccount"]["id"] for b in listed.json()] == ["BA-1001"]
        other = await bill_of(demo_client, "BA-1002")
        assert (await demo_client.get(f"{BILLS}/{other['id']}", headers=mine)).status_code == 404
        own = listed.json()[0]
        assert (
            await demo_client.patch(f"{BILLS}/{own['id']}", json={"state": "onHold"}, headers=mine)
        ).status_code == 403
        assert (await demo_client.get(RATES, headers=mine)).status_code == 403

    async def test_staff_put_bills_on_hold(self, demo_client: httpx.AsyncClient) -> None:
        bill = await bill_of(demo_client, "BA-1001")
        agent = testing.auth_headers("agent")
        response = await demo_client.patch(f"{BILLS}/{bill['id']}", json={"state": "onHold"}, headers=agent)
        assert response.status_code == 200
