"""Money is exact end to end: a value sent comes back as the same JSON number through POST, GET, a
list, PATCH and the events; totals are Decimal sums; a number that could not come back as sent is a
400 that stores nothing (issue #9, "Money")."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from ordering.samples import broadband_order
from switchboard_dev import testing

from ..conftest import BASE, outbox

pytestmark = pytest.mark.asyncio

ORDERS = f"{BASE}/productOrder"


def with_product_price(value: str, tax_rate: str = "20.5") -> bytes:
    """The broadband order whose product carries a price of ``value`` EUR, as raw JSON text (so the
    number is sent exactly as written)."""
    order = broadband_order()
    order["productOrderItem"][0]["product"]["productPrice"] = [
        {"priceType": "recurring", "recurringChargePeriod": "month", "price": {"taxRate": 0, "x": 0}}
    ]
    raw = orjson.dumps(order).decode()
    money = f'"taxIncludedAmount":{{"unit":"EUR","value":{value}}}'
    return raw.replace('"taxRate":0,"x":0', f'"taxRate":{tax_rate},{money}').encode()


def numbers(body: str, name: str) -> list[str]:
    return re.findall(rf'"{name}":\s*([-0-9.eE+]+)', body)


def product_value(doc: dict[str, Any]) -> Any:
    return doc["productOrderItem"][0]["product"]["productPrice"][0]["price"]["taxIncludedAmount"]["value"]


async def stored(app: FastAPI) -> int:
    return int((await testing.sql(app, "SELECT count(*) AS n FROM product_order"))[0]["n"])


async def stored_value(app: FastAPI, id: str) -> str:
    path = "{productOrderItem,0,product,productPrice,0,price,taxIncludedAmount,value}"
    rows = await testing.sql(
        app, f"SELECT (doc #> '{path}')::text AS v FROM product_order WHERE id = :id", id=id
    )
    return str(rows[0]["v"])


HEADERS = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    "value", ["19.99", "0.1", "12.10", "1234567890123.45", "1e-7", "0.30000000000000004"]
)
async def test_a_value_comes_back_as_the_same_json_number(
    client: httpx.AsyncClient, app: FastAPI, value: str
) -> None:
    response = await client.post(ORDERS, content=with_product_price(value), headers=HEADERS)
    assert response.status_code == 201, response.text
    created = response.json()
    id = created["id"]
    assert Decimal(repr(product_value(created))) == Decimal(value)
    assert Decimal(await stored_value(app, id)) == Decimal(value)  # PostgreSQL's numeric, exactly

    got = await client.get(f"{ORDERS}/{id}")
    listed = await client.get(ORDERS, params={"relatedParty.id": "CUST-1001"})
    patched = await client.patch(
        f"{ORDERS}/{id}",
        content=b'{"description": "changed"}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200, patched.text
    for answer in (response, got, listed, patched):
        sent = [Decimal(n) for n in numbers(answer.text, "value")]
        assert Decimal(value) in sent
        assert [Decimal(n) for n in numbers(answer.text, "taxRate")].count(Decimal("20.5")) == 1
    events = [row["payload"] for row in await outbox(app)]
    assert events, "no events"
    for event in events:
        assert Decimal(repr(product_value(event["event"]["productOrder"]))) == Decimal(value)


async def test_totals_are_exact_sums(client: httpx.AsyncClient) -> None:
    order = broadband_order()
    order["productOrderItem"][1]["quantity"] = 3
    response = await client.post(ORDERS, json=order)
    assert response.status_code == 201, response.text
    created = response.json()
    for total in created["orderTotalPrice"]:
        matching = [
            Decimal(repr(p["price"]["taxIncludedAmount"]["value"]))
            for item in created["productOrderItem"]
            for p in item["itemPrice"]
            if (p["priceType"], p.get("recurringChargePeriod"))
            == (total["priceType"], total.get("recurringChargePeriod"))
        ]
        assert Decimal(repr(total["price"]["taxIncludedAmount"]["value"])) == sum(matching)


@pytest.mark.parametrize("value", ["0.30000000000000001", "12345678901234.567", "1e-400"])
async def test_a_number_that_would_not_come_back_as_sent_is_400_and_stores_nothing(
    client: httpx.AsyncClient, app: FastAPI, value: str
) -> None:
    response = await client.post(ORDERS, content=with_product_price(value), headers=HEADERS)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalidBody"
    assert "cannot be kept exactly" in response.json()["message"]
    assert await stored(app) == 0


async def test_a_patch_with_such_a_number_is_400_and_changes_nothing(client: httpx.AsyncClient) -> None:
    created = (await client.post(ORDERS, content=with_product_price("19.99"), headers=HEADERS)).json()
    body = b'{"description": "changed", "discount": 0.1000000000000000055511151231257827}'
    response = await client.patch(
        f"{ORDERS}/{created['id']}", content=body, headers={"Content-Type": "application/merge-patch+json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalidBody"
    again = await client.get(f"{ORDERS}/{created['id']}")
    assert again.headers["ETag"] == 'W/"1"', again.headers
    assert "discount" not in again.json()
    assert product_value(again.json()) == 19.99
