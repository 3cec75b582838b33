"""An order that names no customer is a 400 and is not stored (issue #8, section 6).

Nothing can be done with such an order, and a client listing orders (the TMF622 conformance kit
among them) expects a relatedParty on every one. Other problems still leave a stored, rejected order."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ordering.samples import broadband_order

from ..conftest import outbox
from .test_product_order import ORDERS, assert_tmf_error, create

pytestmark = pytest.mark.asyncio


def without_customer(parties: list[dict[str, Any]] | None) -> dict[str, Any]:
    body = broadband_order()
    if parties is None:
        del body["relatedParty"]
    else:
        body["relatedParty"] = parties
    return body


@pytest.mark.parametrize(
    "parties",
    [
        None,
        [],
        [{"id": "SHOP-9", "role": "seller", "@referredType": "Organization"}],
        [{"id": "", "role": "customer", "@referredType": "Individual"}],
    ],
    ids=["no-relatedParty", "empty-relatedParty", "only-a-seller", "customer-without-id"],
)
async def test_an_order_naming_no_customer_is_400_and_not_stored(
    client: httpx.AsyncClient, app: FastAPI, parties: list[dict[str, Any]] | None
) -> None:
    before = (await client.get(ORDERS)).json()

    error = assert_tmf_error(await client.post(ORDERS, json=without_customer(parties)), 400)

    assert "relatedParty" in error["message"] and "customer" in error["message"]
    assert (await client.get(ORDERS)).json() == before
    assert await outbox(app) == []


async def test_an_idempotent_post_naming_no_customer_stores_nothing(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    response = await client.post(
        ORDERS, json=without_customer(None), headers={"Idempotency-Key": "no-customer"}
    )

    assert_tmf_error(response, 400)
    assert (await client.get(ORDERS)).json() == []
    assert await outbox(app) == []


async def test_the_conformance_kit_order_names_its_customer(client: httpx.AsyncClient) -> None:
    """The CTK's POST body: a party without a role counts as the customer when it is a person."""
    body = {
        "productOrderItem": [{"id": "123", "action": "add"}],
        "relatedParty": [{"id": "456-dd-df45", "@referredType": "Individual"}],
    }

    order = await create(client, body)

    listed = (await client.get(ORDERS)).json()
    assert [o["id"] for o in listed] == [order["id"]]
    assert all(o.get("relatedParty") for o in listed)


async def test_other_problems_still_store_a_rejected_order(client: httpx.AsyncClient) -> None:
    body = broadband_order()
    body["productOrderItem"][0]["product"]["place"][0]["postcode"] = "NOT A POSTCODE"

    order = await create(client, body)

    assert order["state"] == "rejected"
    assert [o["id"] for o in (await client.get(ORDERS)).json()] == [order["id"]]


async def test_a_patch_cannot_remove_the_customer(client: httpx.AsyncClient) -> None:
    order = await create(client)

    response = await client.patch(
        f"{ORDERS}/{order['id']}",
        json={"relatedParty": [{"id": "SHOP-9", "role": "seller", "@referredType": "Organization"}]},
    )

    assert_tmf_error(response, 400)
    assert (await client.get(f"{ORDERS}/{order['id']}")).json()["relatedParty"] == order["relatedParty"]
