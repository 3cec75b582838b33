"""What a newcomer ran into reading orders (issue: the kit becomes the template): no 304, two JSON
encodings, 206 for a list nobody paged, generated hub operationIds and every error status listed on
every operation. Each is fixed in the kit, and checked here through ordering."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from .test_product_order import ORDERS, create

pytestmark = pytest.mark.asyncio


async def test_if_none_match_answers_304(client: httpx.AsyncClient) -> None:
    order = await create(client)
    url = f"{ORDERS}/{order['id']}"
    etag = (await client.get(url)).headers["ETag"]
    cached = await client.get(url, headers={"If-None-Match": etag})
    assert (cached.status_code, cached.content, cached.headers["ETag"]) == (304, b"", etag)
    assert (await client.get(url, headers={"If-None-Match": 'W/"999"'})).status_code == 200


async def test_every_answer_is_compact_json(client: httpx.AsyncClient) -> None:
    order = await create(client)
    for response in (
        await client.get(f"{ORDERS}/{order['id']}"),
        await client.get(ORDERS),
        await client.get(ORDERS, params={"fields": "state"}),
    ):
        assert response.status_code == 200
        assert response.content == orjson.dumps(response.json())
    for other in (
        await client.get(f"{ORDERS}/nope"),  # a TMF Error
        await client.get(ORDERS, params={"state": "nonsense"}),
        await client.get("/health/live"),
    ):
        assert other.content == orjson.dumps(other.json())


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"default_page_limit": 2}


async def test_a_list_nobody_paged_is_200_whatever_the_table_holds(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await create(client)
    everything = await client.get(ORDERS)
    assert everything.status_code == 200
    assert (everything.headers["X-Total-Count"], everything.headers["X-Result-Count"]) == ("3", "2")
    assert (await client.get(ORDERS, params={"limit": 2})).status_code == 206
    assert (await client.get(ORDERS, params={"offset": 2})).status_code == 200


async def test_operations_have_clean_ids_and_only_the_statuses_they_can_answer(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    base = "/tmf-api/productOrderingManagement/v4"
    ids = {op["operationId"] for path, ops in paths.items() if path.startswith(base) for op in ops.values()}
    assert ids == {
        "listProductOrder",
        "createProductOrder",
        "retrieveProductOrder",
        "patchProductOrder",
        "deleteProductOrder",
        "listCancelProductOrder",
        "createCancelProductOrder",
        "retrieveCancelProductOrder",
        "registerListener",
        "retrieveListener",
        "unregisterListener",
        "retrieveListenerDeliveryStatus",
    }
    signed_in = {"401", "403"}  # every operation needs a token with the right role
    assert (
        set(paths[f"{base}/productOrder/{{id}}"]["get"]["responses"])
        == {"200", "304", "400", "404"} | signed_in
    )
    assert (
        set(paths[f"{base}/productOrder/{{id}}"]["delete"]["responses"])
        == {"204", "404", "409", "412"} | signed_in
    )
    assert set(paths[f"{base}/hub/{{id}}"]["delete"]["responses"]) == {"204", "404"} | signed_in
    assert set(paths[f"{base}/hub/{{id}}/deliveryStatus"]["get"]["responses"]) == {"200", "404"} | signed_in
    assert all("500" not in op["responses"] for ops in paths.values() for op in ops.values())
