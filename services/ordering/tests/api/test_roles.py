"""Roles on ordering's operations: a customer reaches only its own orders, deleting needs a manager or
a system (a newcomer deleted a completed order by accident), cancelling is the staff's."""

from __future__ import annotations

import httpx
import pytest

from ordering.samples import broadband_order
from switchboard_dev import testing

from .test_product_order import ORDERS

pytestmark = pytest.mark.asyncio

CANCELS = ORDERS.rsplit("/", 1)[0] + "/cancelProductOrder"


def as_(role: str, **kw: str) -> dict[str, str]:
    return testing.auth_headers(role, **kw)


async def test_a_customer_reaches_only_its_own_orders(client: httpx.AsyncClient) -> None:
    mine = await client.post(
        ORDERS, json=broadband_order("CUST-A", "BA-A"), headers=as_("customer", party="CUST-A")
    )
    assert mine.status_code == 201, mine.text
    theirs = (await client.post(ORDERS, json=broadband_order("CUST-B", "BA-B"))).json()
    customer = as_("customer", party="CUST-A")

    listed = await client.get(ORDERS, headers=customer)
    assert [o["id"] for o in listed.json()] == [mine.json()["id"]]
    assert listed.headers["X-Total-Count"] == "1"
    # Asking for someone else's party is ANDed with its own: nothing.
    assert (await client.get(ORDERS, params={"relatedParty.id": "CUST-B"}, headers=customer)).json() == []
    assert (await client.get(f"{ORDERS}/{mine.json()['id']}", headers=customer)).status_code == 200
    assert (await client.get(f"{ORDERS}/{theirs['id']}", headers=customer)).status_code == 404

    for_someone_else = await client.post(ORDERS, json=broadband_order("CUST-B", "BA-B"), headers=customer)
    assert for_someone_else.status_code == 403
    patch = await client.patch(f"{ORDERS}/{mine.json()['id']}", json={"description": "x"}, headers=customer)
    assert patch.status_code == 403
    assert (await client.get(CANCELS, headers=customer)).status_code == 403
    # A customer token without its party reaches nothing.
    assert (await client.get(ORDERS, headers=as_("customer"))).status_code == 403
    # Staff see every order.
    assert (await client.get(ORDERS, headers=as_("agent"))).headers["X-Total-Count"] == "2"


async def test_deleting_needs_a_manager_or_a_system(client: httpx.AsyncClient) -> None:
    bad = broadband_order("CUST-A", "BA-A")
    bad["productOrderItem"][0]["product"]["place"][0]["postcode"] = "NOT A POSTCODE"
    rejected = (await client.post(ORDERS, json=bad)).json()
    assert rejected["state"] == "rejected"
    url = f"{ORDERS}/{rejected['id']}"
    assert (await client.delete(url, headers=as_("agent"))).status_code == 403
    assert (await client.get(url)).status_code == 200  # still there
    assert (await client.delete(url, headers=as_("manager"))).status_code == 204
