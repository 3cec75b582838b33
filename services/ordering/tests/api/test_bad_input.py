"""Bad input gets a TMF Error with a 4xx status (never a 500) and stores nothing: date filters outside
years 1..9999 in UTC or not RFC 3339, over-long Idempotency-Keys, documents nested too deep, NaN and
Infinity, the media type of cancelProductOrder and hub bodies, hub callbacks without a host, and
long ids echoed in error messages."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ordering.samples import broadband_order
from switchboard_dev import testing
from switchboard_kit.bodies import MAX_JSON_DEPTH

from ..conftest import BASE, outbox
from .test_product_order import assert_tmf_error

pytestmark = pytest.mark.asyncio

ORDERS = f"{BASE}/productOrder"
CANCELS = f"{BASE}/cancelProductOrder"
HUB = f"{BASE}/hub"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}


async def counts(app: FastAPI) -> dict[str, int]:
    tables = ("product_order", "cancel_product_order", "outbox", "idempotency_key", "hub_subscription")
    return {t: int((await testing.sql(app, f"SELECT count(*) AS n FROM {t}"))[0]["n"]) for t in tables}


async def create(client: httpx.AsyncClient, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await client.post(ORDERS, json=body or broadband_order())
    assert response.status_code == 201, response.text
    return dict(response.json())


def nested_ext(levels: int) -> bytes:
    return b"[" * levels + b"1" + b"]" * levels


class TestDateFilters:
    @pytest.mark.parametrize(
        ("path", "query"),
        [
            (ORDERS, "orderDate.gt=9999-12-31T23:59:59-23:59"),
            (ORDERS, "orderDate.gt=0001-01-01T00:00:00%2B14:00"),
            (ORDERS, "orderDate=0001-01-01T00:00:00%2B00:01"),
            (ORDERS, "requestedStartDate=9999-12-31T23:59:59-23:59"),
            (ORDERS, "requestedStartDate.lt=0001-01-01T00:00:00%2B14:00"),
            (CANCELS, "requestedCancellationDate.gt=9999-12-31T23:59:59-12:00"),
        ],
    )
    async def test_instant_outside_years_1_to_9999_in_utc_is_400(
        self, client: httpx.AsyncClient, path: str, query: str
    ) -> None:
        await create(client)
        error = assert_tmf_error(await client.get(f"{path}?{query}"), 400)
        assert "out of range" in error["reason"]

    @pytest.mark.parametrize(
        "value", ["2026-W48-1", "20261201", "2026-12-01T10", "2026-12-01T10:00:00%2B0200"]
    )
    @pytest.mark.parametrize("attr", ["orderDate.gt", "requestedStartDate", "requestedCancellationDate.lt"])
    async def test_value_that_is_not_rfc3339_is_400(
        self, client: httpx.AsyncClient, attr: str, value: str
    ) -> None:
        path = CANCELS if attr.startswith("requestedCancellation") else ORDERS
        assert_tmf_error(await client.get(f"{path}?{attr}={value}"), 400)

    async def test_edges_of_the_range_still_filter(self, client: httpx.AsyncClient) -> None:
        order = await create(client)
        for query in (
            "orderDate.gt=0001-01-01T00:00:00Z",
            "orderDate.lt=9999-12-31T23:59:59Z",
            "orderDate.lt=9999-12-31T23:59:59%2B01:00",
            "orderDate.gte=2000-01-01",
            "requestedStartDate.lt=9999-12-31T22:59:59-01:00",
        ):
            response = await client.get(f"{ORDERS}?{query}")
            assert response.status_code == 200, (query, response.text)
            if not query.startswith("requestedStartDate"):
                assert [o["id"] for o in response.json()] == [order["id"]], query
        cancels = await client.get(f"{CANCELS}?requestedCancellationDate.gt=0001-01-01T00:00:00Z")
        assert cancels.status_code == 200


class TestIdempotencyKey:
    async def test_over_long_key_on_post_product_order_is_400_and_stores_nothing(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        response = await client.post(ORDERS, json=broadband_order(), headers={"Idempotency-Key": "k" * 9000})
        error = assert_tmf_error(response, 400)
        assert "255" in error["message"]
        assert set((await counts(app)).values()) == {0}

    async def test_over_long_key_on_post_cancel_product_order_is_400_and_stores_nothing(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        order = await create(client)
        before = await counts(app)
        response = await client.post(
            CANCELS, json={"productOrder": {"id": order["id"]}}, headers={"Idempotency-Key": "k" * 9000}
        )
        assert_tmf_error(response, 400)
        assert await counts(app) == before
        assert (await client.get(f"{ORDERS}/{order['id']}")).json()["state"] == "inProgress"

    async def test_key_at_the_limit_replays(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        headers = {"Idempotency-Key": "k" * 255}
        first = await client.post(ORDERS, json=broadband_order(), headers=headers)
        again = await client.post(ORDERS, json=broadband_order(), headers=headers)
        assert first.status_code == again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["id"] == first.json()["id"]
        assert (await counts(app))["product_order"] == 1


class TestNesting:
    async def test_merge_patch_nested_too_deep_is_400_and_changes_nothing(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        order = await create(client)
        url = f"{ORDERS}/{order['id']}"
        before = await counts(app)
        for levels in (MAX_JSON_DEPTH, 252, 300, 3000):
            body = b'{"ext": ' + nested_ext(levels) + b"}"
            error = assert_tmf_error(await client.patch(url, content=body, headers=MERGE), 400)
            assert "too deep" in error["reason"]
        assert await counts(app) == before
        assert (await client.get(url)).json() == order

    async def test_json_patch_nested_too_deep_is_400(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        order = await create(client)
        url = f"{ORDERS}/{order['id']}"
        before = await counts(app)
        for levels in (MAX_JSON_DEPTH, 600, 3000):
            body = b'[{"op": "add", "path": "/ext", "value": ' + nested_ext(levels) + b"}]"
            assert_tmf_error(await client.patch(url, content=body, headers=JSON_PATCH), 400)
        # each value is shallow, but the second goes inside the first
        half = MAX_JSON_DEPTH // 2
        steps = (
            b'[{"op": "add", "path": "/ext", "value": '
            + nested_ext(half)
            + b'}, {"op": "add", "path": "/ext'
            + b"/0" * half
            + b'", "value": '
            + nested_ext(half)
            + b"}]"
        )
        assert_tmf_error(await client.patch(url, content=steps, headers=JSON_PATCH), 400)
        assert await counts(app) == before

    async def test_patch_within_the_limit_is_stored_and_its_events_written(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        order = await create(client)
        levels = MAX_JSON_DEPTH - 1  # the order is level 1
        body = b'{"ext": ' + nested_ext(levels) + b"}"
        response = await client.patch(f"{ORDERS}/{order['id']}", content=body, headers=MERGE)
        assert response.status_code == 200, response.text
        events = await outbox(app)
        assert events[-1]["payload"]["eventType"] == "ProductOrderAttributeValueChangeEvent"

    @pytest.mark.parametrize("levels", [MAX_JSON_DEPTH, 150, 250, 3000])
    async def test_post_nested_too_deep_is_400_and_stores_nothing(
        self, client: httpx.AsyncClient, app: FastAPI, levels: int
    ) -> None:
        valid = httpx.Request("POST", "/", json=broadband_order()).content
        body = valid[:-1] + b', "ext": ' + nested_ext(levels) + b"}"
        error = assert_tmf_error(await client.post(ORDERS, content=body), 400)
        assert "too deep" in error["reason"]
        cancel = b'{"productOrder": {"id": "x"}, "ext": ' + nested_ext(levels) + b"}"
        assert_tmf_error(await client.post(CANCELS, content=cancel), 400)
        hub = b'{"callback": "http://listener.example", "query": ' + nested_ext(levels) + b"}"
        assert_tmf_error(await client.post(HUB, content=hub), 400)
        assert set((await counts(app)).values()) == {0}


class TestNonFiniteNumbers:
    @pytest.mark.parametrize(
        "token", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1E+400", b"1" * 400 + b".5"]
    )
    async def test_post_with_nan_or_infinity_is_malformed_json_and_stores_nothing(
        self, client: httpx.AsyncClient, app: FastAPI, token: bytes
    ) -> None:
        valid = httpx.Request("POST", "/", json=broadband_order()).content
        body = valid[:-1] + b', "extNaN": ' + token + b"}"
        error = assert_tmf_error(await client.post(ORDERS, content=body), 400)
        assert error["reason"] == "Malformed JSON"
        cancel = b'{"productOrder": {"id": "x"}, "extNaN": ' + token + b"}"
        assert_tmf_error(await client.post(CANCELS, content=cancel), 400)
        assert set((await counts(app)).values()) == {0}

    async def test_those_words_inside_strings_are_fine(self, client: httpx.AsyncClient) -> None:
        body = broadband_order()
        body["description"] = "NaN Infinity 1e400"
        order = await create(client, body)
        assert order["description"] == "NaN Infinity 1e400"

    async def test_patch_with_overflowing_number_is_400(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        order = await create(client)
        before = await counts(app)
        for body in (b'{"ext": 1e400}', b'{"ext": NaN}'):
            assert_tmf_error(await client.patch(f"{ORDERS}/{order['id']}", content=body, headers=MERGE), 400)
        assert await counts(app) == before


class TestMediaTypes:
    async def test_cancel_and_hub_answer_415_for_a_non_json_body_like_product_order(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        order = await create(client)
        before = await counts(app)
        plain = {"Content-Type": "text/plain"}
        cancel = httpx.Request("POST", "/", json={"productOrder": {"id": order["id"]}}).content
        hub = b'{"callback": "http://listener.example/hooks"}'
        for path, body in (
            (ORDERS, httpx.Request("POST", "/", json=broadband_order()).content),
            (CANCELS, cancel),
            (HUB, hub),
        ):
            assert_tmf_error(await client.post(path, content=body, headers=plain), 415)
        assert await counts(app) == before

    async def test_cancel_and_hub_read_json_when_the_content_type_is_missing(
        self, client: httpx.AsyncClient
    ) -> None:
        order = await create(client)
        cancel = httpx.Request("POST", "/", json={"productOrder": {"id": order["id"]}}).content
        response = await client.post(CANCELS, content=cancel)
        assert "content-type" not in response.request.headers
        assert response.status_code == 201, response.text
        assert response.json()["productOrder"]["id"] == order["id"]
        hub = await client.post(HUB, content=b'{"callback": "http://listener.example/hooks"}')
        assert hub.status_code == 201, hub.text
        assert (await client.get(f"{HUB}/{hub.json()['id']}")).status_code == 200

    async def test_cancel_with_json_media_type_parameters_works(self, client: httpx.AsyncClient) -> None:
        order = await create(client)
        response = await client.post(
            CANCELS,
            content=httpx.Request("POST", "/", json={"productOrder": {"id": order["id"]}}).content,
            headers={"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": "c-1"},
        )
        assert response.status_code == 201, response.text


class TestHubCallback:
    @pytest.mark.parametrize(
        "callback",
        ["http://", "https://", "http:///hooks", "http://:8080/", "http://listener.example:99999/"],
    )
    async def test_callback_without_a_host_is_400(
        self, client: httpx.AsyncClient, app: FastAPI, callback: str
    ) -> None:
        assert_tmf_error(await client.post(HUB, json={"callback": callback}), 400)
        assert (await counts(app))["hub_subscription"] == 0


class TestLongIds:
    async def test_long_id_is_not_echoed_in_full(self, client: httpx.AsyncClient) -> None:
        long_id = "x" * 20000
        for response in (
            await client.get(f"{ORDERS}/{long_id}"),
            await client.get(f"{HUB}/{long_id}"),
            await client.patch(f"{ORDERS}/{long_id}", json={"description": "x"}),
        ):
            error = assert_tmf_error(response, 404)
            assert len(error["message"]) <= 1000
