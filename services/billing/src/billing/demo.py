"""Demo data: a few accounts charged from completed orders, and bills in several states, so that a
newcomer (and the TMF678 conformance kit, which creates no bill or rate) finds data."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from switchboard_kit.store import Store

from . import samples
from .domain import BillState
from .models import customer_bill
from .service import BillingService

DEMO_ORDERS = [
    samples.completed_order("DEMO-ORDER-1", "BA-1001", "CUST-1001", [samples.FIBRE_500, samples.ROUTER]),
    samples.completed_order("DEMO-ORDER-2", "BA-1002", "CUST-1002", [samples.SIM_ONLY]),
    samples.completed_order("DEMO-ORDER-3", "BA-1003", "CUST-1003", [samples.FIBRE_500]),
    samples.completed_order("DEMO-ORDER-4", "BA-1004", "CUST-1004", [samples.SIM_ONLY]),
]


async def load(store: Store, service: BillingService) -> bool:
    """Charges the demo orders and bills three of their accounts (sent, onHold, validated), leaving the
    fourth's charges unbilled. Does nothing (False) when the service already holds bills."""
    at = datetime(2026, 11, 16, 10, tzinfo=UTC)
    async with store.unit_of_work() as uow:
        count = await uow.fetch(select(func.count().label("n")).select_from(customer_bill))
        if count[0]["n"]:
            return False
        for order in DEMO_ORDERS:
            await service.charge_order(uow, order, at=at)
        states = {"BA-1001": BillState.SENT, "BA-1002": BillState.VALIDATED, "BA-1003": BillState.SENT}
        for account_id, state in states.items():
            bill, _ = await service.bill_now(uow, account_id, at=at, final_state=state)
            assert bill is not None
            if account_id == "BA-1003":
                await service.hold(uow, bill["id"])
    return True
