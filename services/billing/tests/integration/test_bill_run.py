"""Bill runs on the kit's scheduler, against real PostgreSQL with real concurrent transactions: one
onCycle bill per account whose cycle day it is, recurring charges billed in advance, amounts as
computed by hand, and a period billed once however often (or however concurrently) it runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from fastapi import FastAPI

from billing import samples
from billing import service as billing_service
from billing.app import create_app
from billing.service import BillingService
from billing.worker import billing_scheduler
from switchboard_dev import testing
from switchboard_kit.schedule import ManualClock
from switchboard_kit.store import Store

from ..conftest import BILLS, RATES, SERVICE_DIR, make_settings

pytestmark = pytest.mark.asyncio

ORDERS = [
    samples.completed_order("ORD-A", "BA-C1", "CUST-C1", [samples.FIBRE_500, samples.ROUTER]),
    samples.completed_order(
        "ORD-C", "BA-C1", "CUST-C1", [samples.SIM_ONLY], completed_at="2026-11-21T08:00:00Z"
    ),
    samples.completed_order("ORD-D", "BA-C15", "CUST-C15", [samples.SIM_ONLY]),
]


@pytest.fixture
def run_db(pg_server_url: str) -> Iterator[str]:
    """A database of its own: bill runs commit for real, and two of them race."""
    url = testing.create_database(pg_server_url, "sb_billing_runs")
    testing.migrate(SERVICE_DIR / "alembic.ini", url)
    yield url
    testing.drop_database(url)


@pytest_asyncio.fixture
async def charged(run_db: str) -> AsyncIterator[FastAPI]:
    """The app with the orders charged. BA-C15 is known before its order, with cycle day 15."""
    app = create_app(make_settings(run_db))
    async with testing.running(app):
        store, service = app.state.runtime.store, app.state.billing_service
        async with store.unit_of_work() as uow:
            account = {
                **service.new_account("BA-C15", parties=[{"id": "CUST-C15", "role": "customer"}]),
                "billCycleDay": 15,
            }
            await service.add_account(uow, account, since=date(2026, 11, 16))
        async with store.unit_of_work() as uow:
            for order in ORDERS:
                await service.charge_order(uow, order, at=datetime(2026, 11, 16, tzinfo=UTC))
        yield app


def amounts(bill: dict[str, Any]) -> tuple[Any, ...]:
    return (
        bill["taxExcludedAmount"]["value"],
        bill["taxItem"][0]["taxAmount"]["value"],
        bill["taxIncludedAmount"]["value"],
        bill["amountDue"]["value"],
        bill["remainingAmount"]["value"],
    )


async def count(app: FastAPI, table: str) -> int:
    return int((await testing.sql(app, f"SELECT count(*) AS n FROM {table}"))[0]["n"])


async def test_a_cycle_bills_each_account_of_the_day_once(charged: FastAPI) -> None:
    app = charged
    store: Store = app.state.runtime.store
    service: BillingService = app.state.billing_service
    clock = ManualClock(datetime(2026, 11, 30, 12, tzinfo=UTC))
    scheduler = billing_scheduler(
        service, cycle_cron="0 2 * * *", poll_interval=0.1, batch_size=10, clock=clock
    )
    await scheduler.tick(store)  # registers the schedule: first tick 1 December 02:00
    assert await count(app, "customer_bill") == 0
    clock.advance(timedelta(hours=14, seconds=1))
    assert await scheduler.tick(store) == 1

    async with testing.running(app) as client:
        (bill,) = (await client.get(BILLS)).json()
        # BA-C1 on 1 December: November's prorated charges (Fibre 500 monthly 20.00 for 15 of 30 days,
        # installation 50.00, router 99.00, SIM-only 3.33 for 10 of 30 days) and December's recurring
        # charges in advance (40.00 and 10.00). VAT 21% per line: 4.20 + 10.50 + 20.79 + 0.70 + 8.40 +
        # 2.10 = 46.69.
        assert (bill["runType"], bill["state"], bill["billingAccount"]["id"]) == ("onCycle", "sent", "BA-C1")
        assert amounts(bill) == (222.33, 46.69, 269.02, 269.02, 269.02)
        assert bill["billDate"] == "2026-12-01T00:00:00Z"
        assert bill["paymentDueDate"] == "2026-12-15T00:00:00Z"
        assert bill["nextBillDate"] == "2027-01-01T00:00:00Z"
        assert bill["billingPeriod"] == {
            "startDateTime": "2026-11-01T00:00:00Z",
            "endDateTime": "2026-12-01T00:00:00Z",
        }
        lines = (await client.get(RATES, params={"bill.id": bill["id"]})).json()
        assert sorted(r["taxExcludedAmount"]["value"] for r in lines) == [3.33, 10, 20, 40, 50, 99]
        assert sum(round(r["taxExcludedAmount"]["value"] * 100) for r in lines) == 22233  # exactly the bill's
        december = [r for r in lines if r["periodCoverage"]["startDateTime"] == "2026-12-01T00:00:00Z"]
        assert {r["periodCoverage"]["endDateTime"] for r in december} == {"2027-01-01T00:00:00Z"}
        # BA-C15 bills on the 15th: its charge is still unbilled.
        unbilled = (await client.get(RATES, params={"isBilled": "false"})).json()
        assert [(r["billingAccount"]["id"], r["taxExcludedAmount"]["value"]) for r in unbilled] == [
            ("BA-C15", 9.67)
        ]

    # Running the period again changes nothing.
    rates_before = await count(app, "applied_customer_billing_rate")
    async with store.unit_of_work() as uow:
        assert await service.run_cycle(uow, datetime(2026, 12, 1, 2, tzinfo=UTC)) == 0
        assert await service.bill_account_cycle(uow, "BA-C1", upto=date(2026, 12, 1)) == []
    assert await count(app, "customer_bill") == 1
    assert await count(app, "applied_customer_billing_rate") == rates_before

    # The service is down for a month: the first run after it bills every cycle date that has come
    # (BA-C15's 15 December, BA-C1's 1 January), none twice.
    clock.advance(timedelta(days=31))
    assert await scheduler.tick(store) == 1  # one run of the schedule
    async with testing.running(app) as client:
        bills = (await client.get(BILLS, params={"sort": "billDate"})).json()
        assert [(b["billingAccount"]["id"], b["billDate"]) for b in bills] == [
            ("BA-C1", "2026-12-01T00:00:00Z"),
            ("BA-C15", "2026-12-15T00:00:00Z"),
            ("BA-C1", "2027-01-01T00:00:00Z"),
        ]
        # BA-C15: SIM-only from 16 November to 15 December, 29 of 30 days of 10.00 = 9.67, and 15
        # December to 15 January in advance, 10.00. VAT: 2.03 + 2.10.
        assert amounts(bills[1]) == (19.67, 4.13, 23.8, 23.8, 23.8)
        assert bills[1]["billingPeriod"] == {
            "startDateTime": "2026-11-15T00:00:00Z",
            "endDateTime": "2026-12-15T00:00:00Z",
        }
        # BA-C1 in January: the January periods in advance, nothing else.
        assert amounts(bills[2]) == (50, 10.5, 60.5, 60.5, 60.5)
        assert (await client.get(RATES, params={"isBilled": "false"})).json() == []


async def test_two_runs_of_one_period_at_once_make_one_bill(
    charged: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = charged
    failures: list[Any] = []
    # A run that lost a race on the unique keys would be logged and rolled back: none may be.
    monkeypatch.setattr(billing_service.log, "exception", lambda *a, **kw: failures.append(a))
    store: Store = app.state.runtime.store
    service: BillingService = app.state.billing_service

    async def run() -> int:
        async with store.unit_of_work() as uow:
            return await service.run_cycle(uow, datetime(2026, 12, 1, 2, tzinfo=UTC))

    made = await asyncio.gather(run(), run(), run())
    assert sorted(made) == [0, 0, 1]
    assert failures == []
    assert await count(app, "customer_bill") == 1
    rows = await testing.sql(
        app, "SELECT count(*) AS n, count(DISTINCT source_key) AS keys FROM applied_customer_billing_rate"
    )
    assert rows[0]["n"] == rows[0]["keys"] == 7  # 5 from the orders, BA-C1's 2 December periods; none twice


async def test_an_account_with_nothing_due_gets_no_bill(charged: FastAPI) -> None:
    app = charged
    store: Store = app.state.runtime.store
    service: BillingService = app.state.billing_service
    async with store.unit_of_work() as uow:
        assert len(await service.bill_account_cycle(uow, "BA-C1", upto=date(2026, 12, 1))) == 1
    # 15 December: BA-C15's cycle; BA-C1 has nothing due until January.
    async with store.unit_of_work() as uow:
        assert await service.run_cycle(uow, datetime(2026, 12, 15, 2, tzinfo=UTC)) == 1
        assert await service.bill_account_cycle(uow, "BA-C1", upto=date(2026, 12, 15)) == []
        assert await service.bill_account_cycle(uow, "BA-UNKNOWN", upto=date(2026, 12, 15)) == []
    assert await count(app, "customer_bill") == 2
