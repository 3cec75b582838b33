from __future__ import annotations

import httpx
import pytest

from ..conftest import BASE

pytestmark = pytest.mark.asyncio

HUB = f"{BASE}/hub"


class TestHub:
    async def test_register_get_and_delete(self, client: httpx.AsyncClient) -> None:
        body = {"callback": "http://listener.example/hooks", "query": "eventType=ProductOrderCreateEvent"}
        created = await client.post(HUB, json=body)
        assert created.status_code == 201
        sub = created.json()
        assert sub == {"id": sub["id"], **body}
        assert created.headers["Location"] == f"http://orders.example{HUB}/{sub['id']}"
        assert (await client.get(f"{HUB}/{sub['id']}")).json() == sub
        assert (await client.delete(f"{HUB}/{sub['id']}")).status_code == 204
        assert (await client.get(f"{HUB}/{sub['id']}")).status_code == 404
        assert (await client.delete(f"{HUB}/{sub['id']}")).status_code == 404

    @pytest.mark.parametrize(
        "content",
        [
            b'{"callback": "not-a-url"}',
            b'{"callback": "http://x/", "query": "no equals sign"}',
            b'{"callback": "http://x/", "query": "eventType=\\ud800"}',
            b'{"callback": "http://x/\\u0000"}',
            b'{"callback": 5}',
            b"[]",
            b"{",
        ],
    )
    async def test_bad_subscriptions_are_400(self, client: httpx.AsyncClient, content: bytes) -> None:
        response = await client.post(HUB, content=content, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, response.text
        assert response.json()["@type"] == "Error"


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("bogus=1", "unknownAttribute"),
        ("eventType=NoSuchEvent", "invalidFilterValue"),
        ("event.productOrder.state=nonsense", "invalidFilterValue"),
        ("event.productOrder.colour=red", "unknownAttribute"),
    ],
)
async def test_a_query_that_can_never_match_is_400_and_stores_nothing(
    client: httpx.AsyncClient, query: str, code: str
) -> None:
    """A subscription query is checked by the list-query compiler: it never silently never fires."""
    response = await client.post(HUB, json={"callback": "http://listener.example/", "query": query})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    listed = await client.post(
        HUB,
        json={
            "callback": "http://listener.example/",
            "query": "eventType=ProductOrderStateChangeEvent&event.productOrder.state=completed",
        },
    )
    assert listed.status_code == 201
