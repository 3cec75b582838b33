from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ordering.samples import broadband_order
from switchboard_dev import testing

from ..conftest import BASE, outbox, run_worker

pytestmark = pytest.mark.asyncio

ORDERS = f"{BASE}/productOrder"


async def create(client: httpx.AsyncClient, body: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    response = await client.post(ORDERS, json=body or broadband_order(), **kw)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def count_orders(app: FastAPI) -> int:
    return int((await testing.sql(app, "SELECT count(*) AS n FROM product_order"))[0]["n"])


def assert_tmf_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["@type"] == "Error"
    assert body["status"] == str(status)
    assert body["code"] and body["reason"]
    return dict(body)


class TestCreate:
    async def test_valid_order_is_priced_and_in_progress(self, client: httpx.AsyncClient) -> None:
        response = await client.post(ORDERS, json=broadband_order(), headers={"X-Correlation-ID": "corr-42"})
        assert response.status_code == 201
        order = response.json()
        assert response.headers["Location"] == order["href"]
        assert order["href"] == f"http://orders.example{ORDERS}/{order['id']}"
        assert response.headers["X-Correlation-ID"] == "corr-42"
        assert response.headers["ETag"]
        assert order["state"] == "inProgress"
        assert {i["state"] for i in order["productOrderItem"]} == {"inProgress"}
        assert order["orderDate"].endswith("Z")
        totals = {p["priceType"]: p["price"]["taxIncludedAmount"]["value"] for p in order["orderTotalPrice"]}
        assert totals == {"recurring": 48.4, "oneTime": 205.7}
        assert all(item["itemPrice"] for item in order["productOrderItem"])

    async def test_events_are_written_to_the_outbox_in_the_same_transaction(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        order = await create(client, headers={"X-Correlation-ID": "corr-7"})
        events = await outbox(app)
        assert [e["payload"]["eventType"] for e in events] == [
            "ProductOrderCreateEvent",
            "ProductOrderStateChangeEvent",
        ]
        assert [e["payload"]["event"]["productOrder"]["state"] for e in events] == [
            "acknowledged",
            "inProgress",
        ]
        assert {e["topic"] for e in events} == {"tmf622.productOrder"}
        assert {e["key"] for e in events} == {order["id"]}
        assert {e["payload"]["correlationId"] for e in events} == {"corr-7"}
        assert events[0]["headers"] == {"eventType": "ProductOrderCreateEvent", "correlationId": "corr-7"}

    async def test_invalid_order_is_rejected_with_every_problem(self, client: httpx.AsyncClient) -> None:
        body = broadband_order()
        del body["billingAccount"]
        body["productOrderItem"][0]["product"]["place"][0]["postcode"] = "12"
        body["productOrderItem"][0]["product"]["productCharacteristic"][0]["value"] = "42Mbps"
        body["productOrderItem"][1]["productOffering"]["id"] = "PO-DOES-NOT-EXIST"
        order = await create(client, body)
        assert order["state"] == "rejected"
        texts = " ".join(n["text"] for n in order["note"])
        for code in (
            "missingBillingAccount",
            "invalidPostcode",
            "invalidCharacteristicValue",
            "unknownProductOffering",
        ):
            assert code in texts
        assert "orderTotalPrice" not in order

    async def test_conformance_kit_minimal_order_gets_201_with_state(self, client: httpx.AsyncClient) -> None:
        body = {
            "productOrderItem": [{"id": "123", "action": "add"}],
            "relatedParty": [{"id": "456-dd-df45", "@referredType": "Individual"}],
        }
        order = await create(client, body)
        assert set(order) >= {"productOrderItem", "href", "id", "orderDate", "relatedParty", "state"}

    async def test_malformed_json_is_400_and_stores_nothing(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        response = await client.post(
            ORDERS, content=b'{"productOrderItem": [', headers={"Content-Type": "application/json"}
        )
        assert_tmf_error(response, 400)
        assert await count_orders(app) == 0

    async def test_wrong_types_list_every_problem(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        body = {"productOrderItem": [{"id": 5, "action": "add", "quantity": "many"}], "relatedParty": "C1"}
        error = assert_tmf_error(await client.post(ORDERS, json=body), 400)
        assert "relatedParty" in error["message"] and "quantity" in error["message"]
        assert await count_orders(app) == 0

    async def test_nul_character_is_400_and_stores_nothing(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        # JSON allows \u0000; PostgreSQL's JSONB refuses it, and the one-statement insert must say 400.
        body = broadband_order()
        body["description"] = "before\u0000after"
        error = assert_tmf_error(await client.post(ORDERS, json=body), 400)
        assert "NUL" in error["message"]
        assert await count_orders(app) == 0
        outbox_rows = await outbox(app)
        assert outbox_rows == []

    async def test_media_type_other_than_json_is_415_and_stores_nothing(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        body = json.dumps(broadband_order()).encode()
        refused = await client.post(ORDERS, content=body, headers={"Content-Type": "text/plain"})
        assert_tmf_error(refused, 415)
        assert await count_orders(app) == 0
        # A body sent without a media type is read as JSON; "+json" types are JSON too.
        untyped = await client.post(ORDERS, content=body)
        assert untyped.status_code == 201, untyped.text
        typed = await client.post(
            ORDERS, content=body, headers={"Content-Type": "application/json; charset=utf-8"}
        )
        assert typed.status_code == 201, typed.text
        assert await count_orders(app) == 2

    async def test_missing_items_is_400(self, client: httpx.AsyncClient) -> None:
        assert_tmf_error(await client.post(ORDERS, json={"relatedParty": []}), 400)

    async def test_oversized_body_is_413(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        body = broadband_order()
        body["description"] = "x" * 70_000
        assert_tmf_error(await client.post(ORDERS, json=body), 413)
        assert await count_orders(app) == 0

    async def test_idempotency_key_replays_the_first_response(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        headers = {"Idempotency-Key": "order-abc"}
        first, second = await asyncio.gather(
            client.post(ORDERS, json=broadband_order(), headers=headers),
            client.post(ORDERS, json=broadband_order(), headers=headers),
        )
        assert first.status_code == second.status_code == 201
        assert first.json()["id"] == second.json()["id"]
        assert await count_orders(app) == 1
        third = await client.post(ORDERS, json=broadband_order("OTHER"), headers=headers)
        assert_tmf_error(third, 422)


class TestRetrieve:
    async def test_head_answers_like_get_without_a_body(self, client: httpx.AsyncClient) -> None:
        order = await create(client)
        get = await client.get(f"{ORDERS}/{order['id']}")
        head = await client.head(f"{ORDERS}/{order['id']}")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["ETag"] == get.headers["ETag"]
        assert (await client.head(ORDERS)).status_code == 200

    async def test_get_by_id_and_404(self, client: httpx.AsyncClient) -> None:
        order = await create(client)
        response = await client.get(f"{ORDERS}/{order['id']}")
        assert response.status_code == 200
        assert response.json() == order
        assert_tmf_error(await client.get(f"{ORDERS}/f42b01d2-dba6-4442-a0fa-34e59639fd15"), 404)

    async def test_trailing_slash_and_unknown_path_and_method(self, client: httpx.AsyncClient) -> None:
        order = await create(client)
        assert (await client.get(f"{ORDERS}/{order['id']}/")).status_code == 200
        assert_tmf_error(await client.get(f"{BASE}/nothingHere"), 404)
        assert_tmf_error(await client.put(f"{ORDERS}/{order['id']}", json={}), 405)

    async def test_fields_keep_id_and_href(self, client: httpx.AsyncClient) -> None:
        order = await create(client)
        response = await client.get(f"{ORDERS}/{order['id']}", params={"fields": "state"})
        assert response.json() == {"id": order["id"], "href": order["href"], "state": "inProgress"}


class TestList:
    async def test_filters_paging_and_sort(self, client: httpx.AsyncClient) -> None:
        ids = [(await create(client, broadband_order(f"C{i % 3}", f"B{i}")))["id"] for i in range(7)]
        response = await client.get(ORDERS, params={"relatedParty.id": "C1"})
        assert response.status_code == 200
        assert {o["id"] for o in response.json()} == {ids[1], ids[4]}
        assert response.headers["X-Total-Count"] == "2"

        page = await client.get(ORDERS, params={"limit": 3, "offset": 0, "sort": "orderDate"})
        assert page.status_code == 206
        assert page.headers["X-Total-Count"] == "7" and page.headers["X-Result-Count"] == "3"
        assert [o["id"] for o in page.json()] == ids[:3]
        last = await client.get(ORDERS, params={"limit": 3, "offset": 6, "sort": "orderDate"})
        assert last.status_code == 200 and [o["id"] for o in last.json()] == ids[6:]

        both = await client.get(ORDERS, params={"relatedParty.id": "C1,C2", "fields": "id"})
        assert len(both.json()) == 4 and all(set(o) <= {"id", "href"} for o in both.json())

        offering = await client.get(
            ORDERS,
            params={"productOrderItem.productOffering.id": "PO-ROUTER-WIFI6", "billingAccount.id": "B3"},
        )
        assert [o["id"] for o in offering.json()] == [ids[3]]

        exact = await client.get(
            ORDERS, params={"orderDate": (await client.get(f"{ORDERS}/{ids[2]}")).json()["orderDate"]}
        )
        assert [o["id"] for o in exact.json()] == [ids[2]]

    async def test_comma_or_on_an_indexed_column_takes_each_requests_values(
        self, client: httpx.AsyncClient
    ) -> None:
        orders = [await create(client) for _ in range(3)]
        ids = [o["id"] for o in orders]
        two = await client.get(ORDERS, params={"id": f"{ids[0]},{ids[1]}", "fields": "id"})
        three = await client.get(ORDERS, params={"id": ",".join(ids), "fields": "id"})
        one = await client.get(ORDERS, params={"id": f"{ids[2]},nope", "fields": "id"})
        assert {o["id"] for o in two.json()} == set(ids[:2])
        assert {o["id"] for o in three.json()} == set(ids)
        assert [o["id"] for o in one.json()] == [ids[2]]

    async def test_date_operators(self, client: httpx.AsyncClient) -> None:
        first = await create(client)
        second = await create(client)
        after = await client.get(ORDERS, params={"orderDate.gt": first["orderDate"]})
        assert [o["id"] for o in after.json()] == [second["id"]]
        before = await client.get(ORDERS, params={"orderDate.lte": first["orderDate"]})
        assert [o["id"] for o in before.json()] == [first["id"]]

    @pytest.mark.parametrize(
        "params",
        [
            {"colour": "red"},
            {"state.between": "x"},
            {"limit": "-1"},
            {"offset": "abc"},
            {"orderDate.gt": "yesterday"},
            {"sort": "nope"},
        ],
    )
    async def test_bad_queries_are_400(self, client: httpx.AsyncClient, params: dict[str, str]) -> None:
        assert_tmf_error(await client.get(ORDERS, params=params), 400)

    async def test_injection_attempt_matches_nothing(self, client: httpx.AsyncClient) -> None:
        await create(client)
        response = await client.get(ORDERS, params={"relatedParty.id": "' OR 1=1 --"})
        assert response.status_code == 200 and response.json() == []


class TestPatch:
    async def test_merge_patch_and_etag(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        order = await create(client)
        etag = (await client.get(f"{ORDERS}/{order['id']}")).headers["ETag"]
        response = await client.patch(
            f"{ORDERS}/{order['id']}",
            content=json.dumps({"description": "changed"}),
            headers={"Content-Type": "application/merge-patch+json", "If-Match": etag},
        )
        assert response.status_code == 200, response.text
        assert response.json()["description"] == "changed"
        assert response.headers["ETag"] != etag
        stale = await client.patch(
            f"{ORDERS}/{order['id']}",
            content=json.dumps({"description": "lost"}),
            headers={"Content-Type": "application/merge-patch+json", "If-Match": etag},
        )
        assert_tmf_error(stale, 412)
        assert (await client.get(f"{ORDERS}/{order['id']}")).json()["description"] == "changed"
        types = [e["payload"]["eventType"] for e in await outbox(app)]
        assert types.count("ProductOrderAttributeValueChangeEvent") == 1

    async def test_json_patch(self, client: httpx.AsyncClient) -> None:
        order = await create(client)
        response = await client.patch(
            f"{ORDERS}/{order['id']}",
            content=json.dumps([{"op": "add", "path": "/note/-", "value": {"text": "second"}}]),
            headers={"Content-Type": "application/json-patch+json"},
        )
        assert response.status_code == 200, response.text
        assert [n["text"] for n in response.json()["note"]][-1] == "second"

    async def test_concurrent_patches_lose_nothing(self, client: httpx.AsyncClient) -> None:
        order = await create(client)

        async def add_note(i: int) -> int:
            r = await client.patch(
                f"{ORDERS}/{order['id']}",
                content=json.dumps([{"op": "add", "path": "/note/-", "value": {"text": f"n{i}"}}]),
                headers={"Content-Type": "application/json-patch+json"},
            )
            return r.status_code

        assert set(await asyncio.gather(*(add_note(i) for i in range(8)))) == {200}
        notes = (await client.get(f"{ORDERS}/{order['id']}")).json()["note"]
        assert {n["text"] for n in notes} >= {f"n{i}" for i in range(8)}

    @pytest.mark.parametrize(
        ("content", "ctype", "status"),
        [
            (b"{bad", "application/merge-patch+json", 400),
            (b'{"id": "other"}', "application/merge-patch+json", 400),
            (b'{"priority": 5}', "application/json", 400),
            (b'[{"op": "remove", "path": "/nope"}]', "application/json-patch+json", 400),
            (b"<xml/>", "application/xml", 415),
            (b'{"state": "completed"}', "application/merge-patch+json", 409),
            (b'{"state": null}', "application/merge-patch+json", 400),
            (b'[{"op": "remove", "path": "/state"}]', "application/json-patch+json", 400),
            (b'{"state": "nonsense"}', "application/merge-patch+json", 400),
        ],
    )
    async def test_bad_patches(
        self, client: httpx.AsyncClient, content: bytes, ctype: str, status: int
    ) -> None:
        order = await create(client)
        response = await client.patch(
            f"{ORDERS}/{order['id']}", content=content, headers={"Content-Type": ctype}
        )
        assert_tmf_error(response, status)
        assert (await client.get(f"{ORDERS}/{order['id']}")).json() == order


class TestFulfilment:
    async def test_worker_completes_items_and_order(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        order = await create(client)
        assert await run_worker(app) == 1
        done = (await client.get(f"{ORDERS}/{order['id']}")).json()
        assert done["state"] == "completed"
        assert {i["state"] for i in done["productOrderItem"]} == {"completed"}
        assert done["completionDate"].endswith("Z")
        states = [
            e["payload"]["event"]["productOrder"]["state"]
            for e in await outbox(app)
            if e["payload"]["eventType"] == "ProductOrderStateChangeEvent"
        ]
        assert states == ["inProgress", "completed"]

    @pytest.mark.parametrize(
        "settings_overrides", [{"provisioning_fallout_rate": 1.0, "provisioning_seed": 1}]
    )
    async def test_fallout_holds_the_order_and_patch_retries_it(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        order = await create(client)
        await run_worker(app)
        held = (await client.get(f"{ORDERS}/{order['id']}")).json()
        assert held["state"] == "held"
        assert any("held:" in n["text"] for n in held["note"])
        app.state.provisioning.fallout_rate = 0.0
        retry = await client.patch(f"{ORDERS}/{order['id']}", json={"state": "inProgress"})
        assert retry.status_code == 200 and retry.json()["state"] == "inProgress"
        await run_worker(app)
        assert (await client.get(f"{ORDERS}/{order['id']}")).json()["state"] == "completed"

    @pytest.mark.parametrize("settings_overrides", [{"provisioning_pending_rate": 1.0}])
    async def test_waiting_on_customer_emits_information_required(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        await create(client)
        await run_worker(app)
        types = [e["payload"]["eventType"] for e in await outbox(app)]
        assert types[-1] == "ProductOrderInformationRequiredEvent"

    async def test_delete_only_final_orders(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        order = await create(client)
        assert_tmf_error(await client.delete(f"{ORDERS}/{order['id']}"), 409)
        await run_worker(app)
        assert (await client.delete(f"{ORDERS}/{order['id']}")).status_code == 204
        assert_tmf_error(await client.get(f"{ORDERS}/{order['id']}"), 404)
        assert (await outbox(app))[-1]["payload"]["eventType"] == "ProductOrderDeleteEvent"


class TestCancel:
    async def test_cancellation_runs_to_cancelled(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        order = await create(client)
        response = await client.post(
            f"{BASE}/cancelProductOrder",
            json={"productOrder": {"id": order["id"]}, "cancellationReason": "Moved house"},
        )
        assert response.status_code == 201, response.text
        cancel = response.json()
        assert cancel["state"] == "inProgress"
        assert response.headers["Location"] == cancel["href"]
        assert (await client.get(f"{ORDERS}/{order['id']}")).json()["state"] == "assessingCancellation"
        await run_worker(app)
        assert (await client.get(f"{ORDERS}/{order['id']}")).json()["state"] == "pendingCancellation"
        await run_worker(app)
        cancelled = (await client.get(f"{ORDERS}/{order['id']}")).json()
        assert cancelled["state"] == "cancelled" and cancelled["cancellationReason"] == "Moved house"
        done = (await client.get(f"{BASE}/cancelProductOrder/{cancel['id']}")).json()
        assert done["state"] == "done" and done["effectiveCancellationDate"]
        order_states = [
            e["payload"]["event"]["productOrder"]["state"]
            for e in await outbox(app)
            if e["payload"]["eventType"] == "ProductOrderStateChangeEvent"
        ]
        assert order_states[-3:] == ["assessingCancellation", "pendingCancellation", "cancelled"]
        cancel_types = [
            e["payload"]["eventType"] for e in await outbox(app) if e["topic"] == "tmf622.cancelProductOrder"
        ]
        assert cancel_types == [
            "CancelProductOrderCreateEvent",
            "CancelProductOrderStateChangeEvent",
            "CancelProductOrderStateChangeEvent",
        ]
        listed = await client.get(f"{BASE}/cancelProductOrder", params={"productOrder.id": order["id"]})
        assert [c["id"] for c in listed.json()] == [cancel["id"]]

    async def test_cancel_of_completed_order_is_refused_with_reason(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        order = await create(client)
        await run_worker(app)
        response = await client.post(f"{BASE}/cancelProductOrder", json={"productOrder": {"id": order["id"]}})
        assert response.status_code == 201
        cancel = response.json()
        assert cancel["state"] == "terminatedWithError"
        assert "completed" in cancel["stateReason"]
        assert (await client.get(f"{ORDERS}/{order['id']}")).json()["state"] == "completed"

    async def test_cancel_unknown_order_is_404(self, client: httpx.AsyncClient) -> None:
        assert_tmf_error(
            await client.post(f"{BASE}/cancelProductOrder", json={"productOrder": {"id": "nope"}}), 404
        )
        assert_tmf_error(await client.get(f"{BASE}/cancelProductOrder/nope"), 404)


class TestEventContracts:
    async def test_every_emitted_event_matches_its_published_schema(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        """The producer side of contracts/: consumers validate against the same files."""
        import jsonschema

        from switchboard_dev.manifest import REPO_ROOT

        order = await create(client)
        await client.patch(f"{ORDERS}/{order['id']}", json={"description": "x"})
        await client.post(f"{BASE}/cancelProductOrder", json={"productOrder": {"id": order["id"]}})
        await run_worker(app)
        await run_worker(app)
        seen = set()
        for event in await outbox(app):
            payload = event["payload"]
            schema = json.loads(
                (REPO_ROOT / "contracts" / "events" / f"{payload['eventType']}.schema.json").read_text()
            )
            jsonschema.validate(payload, schema)
            seen.add(payload["eventType"])
        assert {
            "ProductOrderCreateEvent",
            "ProductOrderAttributeValueChangeEvent",
            "CancelProductOrderCreateEvent",
        } <= seen
