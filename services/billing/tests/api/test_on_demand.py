"""customerBillOnDemand: inProgress, then done with an offCycle bill, or rejected with its reason;
appliedCustomerBillingRate and billingAccount reads."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from billing import demo
from switchboard_dev import testing

from ..conftest import ACCOUNTS, BILLS, ON_DEMAND, RATES, outbox, run_worker, service, store

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def demo_client(app: FastAPI, client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    assert await demo.load(store(app), service(app))
    yield client


class TestOnDemand:
    async def test_done_with_an_off_cycle_bill_of_the_unbilled_charges(
        self, app: FastAPI, demo_client: httpx.AsyncClient
    ) -> None:
        unbilled = (
            await demo_client.get(RATES, params={"billingAccount.id": "BA-1004", "isBilled": "false"})
        ).json()
        assert [r["taxExcludedAmount"]["value"] for r in unbilled] == [5]  # 10.00 for 15 of 30 days
        before = len(await outbox(app))
        created = await demo_client.post(ON_DEMAND, json={"billingAccount": {"id": "BA-1004"}})
        assert created.status_code == 201, created.text
        request = created.json()
        assert request["state"] == "inProgress"
        assert request["billingAccount"]["id"] == "BA-1004"

        assert await run_worker(app) == 1
        done = (await demo_client.get(f"{ON_DEMAND}/{request['id']}")).json()
        assert done["state"] == "done"
        bill = (await demo_client.get(done["customerBill"]["href"].split("billing.example", 1)[1])).json()
        assert bill["id"] == done["customerBill"]["id"]
        assert (bill["runType"], bill["state"]) == ("offCycle", "sent")
        assert bill["taxExcludedAmount"] == {"unit": "EUR", "value": 5}
        assert bill["taxIncludedAmount"] == {"unit": "EUR", "value": 6.05}
        assert bill["amountDue"] == bill["remainingAmount"] == {"unit": "EUR", "value": 6.05}
        rate = (await demo_client.get(f"{RATES}/{unbilled[0]['id']}")).json()
        assert rate["isBilled"] is True
        assert rate["bill"]["id"] == bill["id"]

        events = [(e["event_type"], e["payload"]["event"]) for e in (await outbox(app))[before:]]
        assert [(t, next(iter(d.values()))["state"]) for t, d in events] == [
            ("CustomerBillOnDemandCreateEvent", "inProgress"),
            ("CustomerBillCreateEvent", "new"),
            ("CustomerBillStateChangeEvent", "validated"),
            ("CustomerBillStateChangeEvent", "sent"),
            ("CustomerBillOnDemandStateChangeEvent", "done"),
        ]
        # Nothing left to bill: a second request is rejected, and no bill is made.
        again = (await demo_client.post(ON_DEMAND, json={"billingAccount": {"id": "BA-1004"}})).json()
        await run_worker(app)
        again = (await demo_client.get(f"{ON_DEMAND}/{again['id']}")).json()
        assert again["state"] == "rejected"
        assert again["stateReason"] == "Nothing to bill on account BA-1004"
        assert "customerBill" not in again
        assert (await demo_client.get(BILLS, params={"billingAccount.id": "BA-1004"})).headers[
            "X-Total-Count"
        ] == "1"

    @pytest.mark.parametrize(
        ("body", "reason"),
        [
            ({"billingAccount": {"id": "A0815"}}, "Unknown billing account A0815"),
            ({}, "The request names no billingAccount"),
            (
                {"relatedParty": {"id": "CUST-1001", "@referredType": "Individual"}},
                "The request names no billingAccount",
            ),
        ],
    )
    async def test_rejected_with_its_reason(
        self, app: FastAPI, demo_client: httpx.AsyncClient, body: dict, reason: str
    ) -> None:
        created = await demo_client.post(ON_DEMAND, json=body)
        assert created.status_code == 201, created.text
        await run_worker(app)
        request = (await demo_client.get(f"{ON_DEMAND}/{created.json()['id']}")).json()
        assert (request["state"], request["stateReason"]) == ("rejected", reason)
        assert (await demo_client.get(BILLS)).headers["X-Total-Count"] == "3"

    async def test_server_owned_attributes_are_not_the_clients(self, demo_client: httpx.AsyncClient) -> None:
        body = {"billingAccount": {"id": "BA-1004"}, "state": "done", "customerBill": {"id": "x"}}
        request = (await demo_client.post(ON_DEMAND, json=body)).json()
        assert request["state"] == "inProgress"
        assert "customerBill" not in request

    async def test_bad_input_is_400_and_stores_nothing(self, demo_client: httpx.AsyncClient) -> None:
        for body in (
            {"billingAccount": {"id": "x" * 300}},
            {"billingAccount": {}},
            {"billingAccount": "BA-1"},
        ):
            response = await demo_client.post(ON_DEMAND, json=body)
            assert response.status_code == 400, (body, response.text)
        assert (await demo_client.get(ON_DEMAND)).headers["X-Total-Count"] == "0"

    async def test_staff_only(self, demo_client: httpx.AsyncClient) -> None:
        customer = testing.auth_headers("customer", party="CUST-1004")
        body = {"billingAccount": {"id": "BA-1004"}}
        assert (await demo_client.post(ON_DEMAND, json=body, headers=customer)).status_code == 403
        assert (
            await demo_client.post(ON_DEMAND, json=body, headers=testing.auth_headers("agent"))
        ).status_code == 201


class TestRates:
    async def test_is_billed_filter_and_fields(self, demo_client: httpx.AsyncClient) -> None:
        billed = (await demo_client.get(RATES, params={"isBilled": "true"})).json()
        unbilled = (await demo_client.get(RATES, params={"isBilled": "false"})).json()
        assert billed and unbilled
        assert all(r["isBilled"] is True for r in billed)
        assert all(r["isBilled"] is False for r in unbilled)
        only = (await demo_client.get(RATES, params={"fields": "isBilled"})).json()
        assert all(set(r) == {"id", "href", "isBilled"} for r in only)

    async def test_a_recurring_rate_names_its_account_product_order_and_period(
        self, demo_client: httpx.AsyncClient
    ) -> None:
        (rate,) = (await demo_client.get(RATES, params={"billingAccount.id": "BA-1004"})).json()
        assert rate["type"] == "recurringCharge"
        assert rate["product"]["@referredType"] == "Product"
        assert {"name": "productOrderId", "value": "DEMO-ORDER-4", "valueType": "string"} in rate[
            "characteristic"
        ]
        assert rate["periodCoverage"] == {
            "startDateTime": "2026-11-16T10:00:00Z",
            "endDateTime": "2026-12-01T00:00:00Z",
        }
        assert rate["appliedTax"] == [
            {
                "@type": "AppliedBillingTaxRate",
                "taxCategory": "VAT",
                "taxRate": 21,
                "taxAmount": {"unit": "EUR", "value": 1.05},
            }
        ]
        assert rate["taxIncludedAmount"] == {"unit": "EUR", "value": 6.05}

    async def test_read_only(self, demo_client: httpx.AsyncClient) -> None:
        assert (await demo_client.post(RATES, json={})).status_code == 405


class TestAccounts:
    async def test_accounts_learned_from_orders(self, demo_client: httpx.AsyncClient) -> None:
        accounts = (await demo_client.get(ACCOUNTS)).json()
        assert [a["id"] for a in accounts] == ["BA-1001", "BA-1002", "BA-1003", "BA-1004"]
        account = (await demo_client.get(f"{ACCOUNTS}/BA-1001")).json()
        assert account == {
            "id": "BA-1001",
            "href": "http://billing.example/tmf-api/customerBillManagement/v4/billingAccount/BA-1001",
            "@type": "BillingAccount",
            "status": "active",
            "currency": "EUR",
            "billCycleDay": 1,
            "paymentTermsDays": 14,
            "taxZone": "NL",
            "taxRate": 21,
            "relatedParty": [{"id": "CUST-1001", "role": "customer", "@referredType": "Individual"}],
        }
        assert (await demo_client.get(ACCOUNTS, params={"billCycleDay": "2"})).json() == []
        assert (await demo_client.patch(f"{ACCOUNTS}/BA-1001", json={"status": "closed"})).status_code == 405
        assert (
            await demo_client.get(ACCOUNTS, headers=testing.auth_headers("customer", party="CUST-1001"))
        ).status_code == 403
