"""What belongs to the server: ids, hrefs, dates, item states and the states of an order being
cancelled. A client cannot set them, and values the database cannot index are a 400, not a 500."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ordering.domain import MAX_INDEXED_TEXT_LENGTH
from ordering.samples import broadband_order
from switchboard_dev import testing

from ..conftest import BASE, outbox, run_worker
from .test_product_order import ORDERS, assert_tmf_error, count_orders, create

pytestmark = pytest.mark.asyncio

CANCELS = f"{BASE}/cancelProductOrder"
JSON_PATCH = {"Content-Type": "application/json-patch+json"}


async def stored(app: FastAPI, id: str) -> tuple[dict[str, Any], int]:
    (row,) = await testing.sql(app, "SELECT doc, version FROM product_order WHERE id = :id", id=id)
    return dict(row["doc"]), int(row["version"])


async def count_cancels(app: FastAPI) -> int:
    return int((await testing.sql(app, "SELECT count(*) AS n FROM cancel_product_order"))[0]["n"])


def replace(path: str, value: Any) -> dict[str, Any]:
    return {"op": "replace", "path": path, "value": value}


async def json_patch(client: httpx.AsyncClient, id: str, ops: list[dict[str, Any]]) -> httpx.Response:
    return await client.patch(f"{ORDERS}/{id}", content=json.dumps(ops), headers=JSON_PATCH)


async def pending_order(client: httpx.AsyncClient) -> dict[str, Any]:
    order = await create(client)
    response = await client.patch(f"{ORDERS}/{order['id']}", json={"state": "pending"})
    assert response.status_code == 200, response.text
    return dict(response.json())


class TestItemStatesBelongToTheServer:
    async def test_item_states_cannot_be_set_with_the_order_state(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        order = await pending_order(client)
        before = await stored(app, order["id"])
        response = await json_patch(
            client,
            order["id"],
            [
                replace("/state", "inProgress"),
                replace("/productOrderItem/0/state", "rejected"),
                replace("/productOrderItem/1/state", "rejected"),
            ],
        )
        assert_tmf_error(response, 409)
        assert await stored(app, order["id"]) == before

    async def test_items_cannot_be_completed_by_the_client(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        order = await pending_order(client)
        before = await stored(app, order["id"])
        items = [{**item, "state": "completed"} for item in order["productOrderItem"]]
        response = await client.patch(
            f"{ORDERS}/{order['id']}", json={"state": "inProgress", "productOrderItem": items}
        )
        assert_tmf_error(response, 409)
        assert await stored(app, order["id"]) == before

    async def test_one_item_state_with_the_order_state_unchanged(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        order = await create(client)
        before = await stored(app, order["id"])
        response = await json_patch(client, order["id"], [replace("/productOrderItem/1/state", "completed")])
        assert_tmf_error(response, 409)
        assert await stored(app, order["id"]) == before

    async def test_the_retry_still_moves_held_items_to_in_progress(self, client: httpx.AsyncClient) -> None:
        order = await pending_order(client)
        response = await client.patch(f"{ORDERS}/{order['id']}", json={"state": "inProgress"})
        assert response.status_code == 200, response.text
        # The items stayed inProgress while only the order was pending; repeating them is fine.
        repeated = await json_patch(
            client,
            order["id"],
            [replace("/productOrderItem/0/state", "inProgress"), replace("/description", "again")],
        )
        assert repeated.status_code == 200, repeated.text
        assert {i["state"] for i in repeated.json()["productOrderItem"]} == {"inProgress"}

    async def test_a_new_item_on_a_pending_order_gets_the_server_state(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        order = await pending_order(client)
        extra = {**broadband_order()["productOrderItem"][1], "id": "3", "state": "completed"}
        refused = await json_patch(
            client, order["id"], [{"op": "add", "path": "/productOrderItem/-", "value": extra}]
        )
        assert_tmf_error(refused, 409)
        del extra["state"]
        added = await json_patch(
            client, order["id"], [{"op": "add", "path": "/productOrderItem/-", "value": extra}]
        )
        assert added.status_code == 200, added.text
        assert added.json()["productOrderItem"][2]["state"] == "pending"
        await client.patch(f"{ORDERS}/{order['id']}", json={"state": "inProgress"})
        await run_worker(app)
        done = (await client.get(f"{ORDERS}/{order['id']}")).json()
        assert done["state"] == "completed"
        assert [i["state"] for i in done["productOrderItem"]] == ["completed"] * 3


class TestCancellationOwnsTheOrder:
    @pytest.mark.parametrize("state", ["inProgress", "held", "pending", "completed"])
    async def test_no_client_state_change_while_assessing_cancellation(
        self, client: httpx.AsyncClient, app: FastAPI, state: str
    ) -> None:
        order = await create(client)
        response = await client.post(CANCELS, json={"productOrder": {"id": order["id"]}})
        assert response.status_code == 201, response.text
        before = await stored(app, order["id"])
        assert before[0]["state"] == "assessingCancellation"
        assert_tmf_error(await client.patch(f"{ORDERS}/{order['id']}", json={"state": state}), 409)
        assert await stored(app, order["id"]) == before
        # The cancellation runs to its end.
        await run_worker(app)
        assert_tmf_error(await client.patch(f"{ORDERS}/{order['id']}", json={"state": state}), 409)
        await run_worker(app)
        assert (await client.get(f"{ORDERS}/{order['id']}")).json()["state"] == "cancelled"
        cancel = (await client.get(f"{CANCELS}/{response.json()['id']}")).json()
        assert cancel["state"] == "done"

    async def test_no_item_change_while_cancelling_but_other_attributes_may_change(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        order = await create(client)
        await client.post(CANCELS, json={"productOrder": {"id": order["id"]}})
        before = await stored(app, order["id"])
        for ops in (
            [replace("/productOrderItem/0/state", "inProgress")],
            [replace("/productOrderItem/0/quantity", 2)],
        ):
            assert_tmf_error(await json_patch(client, order["id"], ops), 409)
        assert await stored(app, order["id"]) == before
        described = await client.patch(f"{ORDERS}/{order['id']}", json={"description": "moving out"})
        assert described.status_code == 200, described.text
        assert described.json()["state"] == "assessingCancellation"


class TestServerIdsAndDates:
    @pytest.mark.parametrize("client_id", ["mine", 5, {"a": 1}, "x" * 9000])
    async def test_client_id_and_href_on_post_are_replaced(
        self, client: httpx.AsyncClient, app: FastAPI, client_id: Any
    ) -> None:
        body = {**broadband_order(), "id": client_id, "href": "http://evil/x"}
        first = await client.post(ORDERS, json=body)
        second = await client.post(ORDERS, json=body)
        for response in (first, second):
            assert response.status_code == 201, response.text
            order = response.json()
            assert list(order)[:2] == ["id", "href"]
            assert (
                order["id"] != client_id and order["href"] == f"http://orders.example{ORDERS}/{order['id']}"
            )
            assert response.headers["Location"] == order["href"]
            assert (await client.get(f"{ORDERS}/{order['id']}")).json() == order
        assert first.json()["id"] != second.json()["id"]
        assert await count_orders(app) == 2

    async def test_client_id_and_href_on_a_rejected_order_are_replaced(
        self, client: httpx.AsyncClient
    ) -> None:
        body = {**broadband_order(), "id": "mine", "href": "http://evil/x"}
        body["productOrderItem"][0]["product"]["place"][0]["postcode"] = "NOT A POSTCODE"
        order = await create(client, body)
        assert order["state"] == "rejected"
        assert order["id"] != "mine" and order["href"].startswith("http://orders.example")

    async def test_server_dates_on_post_are_dropped(self, client: httpx.AsyncClient) -> None:
        body = {
            **broadband_order(),
            "completionDate": "2020-01-01T00:00:00Z",
            "cancellationDate": "2020-01-01T00:00:00Z",
            "orderDate": "2020-01-01T00:00:00Z",
        }
        order = await create(client, body)
        assert "completionDate" not in order and "cancellationDate" not in order
        assert not order["orderDate"].startswith("2020")

    @pytest.mark.parametrize("client_id", ["mine", 5, "x" * 9000])
    async def test_client_id_and_href_on_cancel_are_replaced(
        self, client: httpx.AsyncClient, app: FastAPI, client_id: Any
    ) -> None:
        orders = [await create(client) for _ in range(2)]
        for order in orders:
            body = {
                "id": client_id,
                "href": "http://evil/x",
                "effectiveCancellationDate": "2020-01-01T00:00:00Z",
                "productOrder": {"id": order["id"]},
            }
            response = await client.post(CANCELS, json=body)
            assert response.status_code == 201, response.text
            cancel = response.json()
            assert list(cancel)[:2] == ["id", "href"]
            assert cancel["id"] != client_id
            assert cancel["href"] == f"http://orders.example{CANCELS}/{cancel['id']}"
            assert response.headers["Location"] == cancel["href"]
            assert "effectiveCancellationDate" not in cancel
            assert (await client.get(f"{CANCELS}/{cancel['id']}")).json() == cancel
        assert await count_cancels(app) == 2


class TestIndexedValues:
    async def test_over_long_party_id_on_post_is_400_and_stores_nothing(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        body = broadband_order("C" * 3000)
        error = assert_tmf_error(await client.post(ORDERS, json=body), 400)
        assert "relatedParty[0].id" in error["message"] and str(MAX_INDEXED_TEXT_LENGTH) in error["message"]
        assert await count_orders(app) == 0
        assert await outbox(app) == []

    async def test_over_long_party_id_on_a_rejected_order_is_400(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        body = broadband_order()
        body["relatedParty"].append(
            {"id": "P" * (MAX_INDEXED_TEXT_LENGTH + 1), "role": "payer", "@referredType": "Organization"}
        )
        del body["billingAccount"]  # would be rejected, but the id cannot be stored at all
        assert_tmf_error(await client.post(ORDERS, json=body), 400)
        assert await count_orders(app) == 0

    async def test_party_id_at_the_limit_is_accepted(self, client: httpx.AsyncClient) -> None:
        order = await create(client, broadband_order("C" * MAX_INDEXED_TEXT_LENGTH))
        assert order["state"] == "inProgress"

    async def test_over_long_party_id_on_patch_is_400_and_changes_nothing(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        order = await create(client)
        before = await stored(app, order["id"])
        response = await json_patch(client, order["id"], [replace("/relatedParty/0/id", "C" * 3000)])
        assert_tmf_error(response, 400)
        assert await stored(app, order["id"]) == before
