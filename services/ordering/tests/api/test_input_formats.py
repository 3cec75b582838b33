"""Input attributes the spec declares ``format: uri`` are checked: ``"@schemaLocation": ""`` was
stored and echoed back, which broke the spec's own response schema (issue #8, "Done when")."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from ordering.samples import broadband_order

from ..conftest import BASE

pytestmark = pytest.mark.asyncio

ORDERS = f"{BASE}/productOrder"


async def stored(app: FastAPI) -> int:
    async with app.state.runtime.engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM product_order"))).scalar_one())


def with_schema_location(where: str, value: str) -> dict[str, Any]:
    order = broadband_order()
    if where == "order":
        order["@schemaLocation"] = value
    elif where == "item":
        order["productOrderItem"][0]["productOffering"]["@schemaLocation"] = value
    else:
        order["relatedParty"][0]["@schemaLocation"] = value
    return order


@pytest.mark.parametrize("where", ["order", "item", "party"])
@pytest.mark.parametrize("value", ["", "not a uri", "schemas/order.json"])
async def test_an_invalid_uri_is_400_and_stores_nothing(
    client: httpx.AsyncClient, app: FastAPI, where: str, value: str
) -> None:
    response = await client.post(ORDERS, json=with_schema_location(where, value))
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["code"], body["reason"]) == ("invalidBody", "Invalid body")
    assert "@schemaLocation" in body["message"]
    assert await stored(app) == 0


async def test_a_valid_uri_is_stored_as_sent(client: httpx.AsyncClient) -> None:
    value = "https://api.switchboard.example/schemas/BroadbandOrder.schema.json"
    response = await client.post(ORDERS, json=with_schema_location("order", value))
    assert response.status_code == 201, response.text
    assert response.json()["@schemaLocation"] == value
    again = await client.get(f"{ORDERS}/{response.json()['id']}")
    assert again.json()["@schemaLocation"] == value


async def test_a_patch_to_an_invalid_uri_reads_as_a_post_does(client: httpx.AsyncClient) -> None:
    order = (await client.post(ORDERS, json=broadband_order())).json()
    response = await client.patch(
        f"{ORDERS}/{order['id']}",
        json={"@schemaLocation": ""},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 400, response.text
    assert "@schemaLocation" in response.json()["message"]
