"""Ordering's list and read queries through the kit's compiler: nested ``fields``, unknown names
and filter values outside their enum or type are 400s (issue #8, section 6 and "Done when")."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ordering.samples import broadband_order

from ..conftest import BASE

pytestmark = pytest.mark.asyncio

ORDERS = f"{BASE}/productOrder"


async def create(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post(ORDERS, json=broadband_order())
    assert response.status_code == 201, response.text
    return dict(response.json())


def tmf_error(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    body = dict(response.json())
    assert body["@type"] == "Error"
    return body


async def test_nested_fields_keep_only_the_selected_sub_attribute(client: httpx.AsyncClient) -> None:
    order = await create(client)
    expected = {
        "id": order["id"],
        "href": order["href"],
        "productOrderItem": [
            {"productOffering": {"id": item["productOffering"]["id"]}} for item in order["productOrderItem"]
        ],
    }
    listed = await client.get(ORDERS, params={"fields": "productOrderItem.productOffering.id"})
    assert listed.status_code == 200, listed.text
    assert listed.json() == [expected]
    read = await client.get(
        f"{ORDERS}/{order['id']}", params={"fields": "productOrderItem.productOffering.id"}
    )
    assert read.status_code == 200, read.text
    assert read.json() == expected


@pytest.mark.parametrize("fields", ["V", "state,colour", "productOrderItem.colour"])
async def test_an_unknown_name_in_fields_is_400(client: httpx.AsyncClient, fields: str) -> None:
    order = await create(client)
    assert tmf_error(await client.get(ORDERS, params={"fields": fields}))["code"] == "unknownAttribute"
    read = await client.get(f"{ORDERS}/{order['id']}", params={"fields": fields})
    assert tmf_error(read)["code"] == "unknownAttribute"


@pytest.mark.parametrize(
    "params",
    [
        {"state": "nonsense"},
        {"state": "acknowledged,nonsense"},
        {"productOrderItem.state": "nonsense"},
        {"productOrderItem.quantity": "two"},
        {"orderDate.gt": "yesterday"},
    ],
)
async def test_a_filter_value_outside_its_enum_or_type_is_400(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    await create(client)
    error = tmf_error(await client.get(ORDERS, params=params))
    assert error["code"] == "invalidFilterValue"
    if "state" in next(iter(params)):
        assert "acknowledged" in error["message"]  # the allowed values are named


async def test_valid_enum_values_still_filter(client: httpx.AsyncClient) -> None:
    order = await create(client)
    found = await client.get(ORDERS, params={"state": order["state"]})
    assert [o["id"] for o in found.json()] == [order["id"]]
    other = "completed" if order["state"] != "completed" else "acknowledged"
    assert (await client.get(ORDERS, params={"state": other})).json() == []
