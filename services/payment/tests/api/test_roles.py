"""Roles: staff take payments and refunds; a customer pays as its own payer and sees only its payments."""

from __future__ import annotations

import httpx
import pytest

from payment.samples import card_payment, refund_of
from switchboard_dev import testing

from ..conftest import PAYMENTS, REFUNDS

pytestmark = pytest.mark.asyncio


def as_(role: str, **kw: str) -> dict[str, str]:
    return testing.auth_headers(role, **kw)


async def test_a_customer_pays_and_sees_only_its_own(client: httpx.AsyncClient) -> None:
    customer = as_("customer", party="CUST-A")
    mine = await client.post(PAYMENTS, json=card_payment("BA-A", "CUST-A"), headers=customer)
    assert mine.status_code == 201, mine.text
    theirs = (await client.post(PAYMENTS, json=card_payment("BA-B", "CUST-B"), headers=as_("agent"))).json()

    listed = await client.get(PAYMENTS, headers=customer)
    assert [p["id"] for p in listed.json()] == [mine.json()["id"]]
    assert (await client.get(PAYMENTS, params={"payer.id": "CUST-B"}, headers=customer)).json() == []
    assert (await client.get(f"{PAYMENTS}/{theirs['id']}", headers=customer)).status_code == 404
    # Paying as someone else, or refunding, is not a customer's.
    assert (
        await client.post(PAYMENTS, json=card_payment("BA-B", "CUST-B"), headers=customer)
    ).status_code == 403
    assert (await client.post(REFUNDS, json=refund_of(mine.json(), 1), headers=customer)).status_code == 403
    assert (await client.get(REFUNDS, headers=customer)).status_code == 403
    assert (await client.get(PAYMENTS, headers=as_("agent"))).headers["X-Total-Count"] == "2"


@pytest.mark.parametrize("role", ["agent", "integration", "manager"])
async def test_staff_take_payments_and_refunds(client: httpx.AsyncClient, role: str) -> None:
    paid = await client.post(PAYMENTS, json=card_payment(), headers=as_(role))
    assert paid.status_code == 201, paid.text
    refunded = await client.post(REFUNDS, json=refund_of(paid.json(), 1), headers=as_(role))
    assert refunded.status_code == 201, refunded.text


async def test_no_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get(PAYMENTS, headers={"Authorization": ""})
    assert response.status_code == 401
