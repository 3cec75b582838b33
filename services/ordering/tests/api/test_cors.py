"""CORS: a browser-based agent desktop at an allowed origin may call the API; by default none may."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from ordering.app import create_app
from switchboard_dev import testing

from ..conftest import BASE, make_settings

ORDERS = f"{BASE}/productOrder"
DESK = "https://desk.example"


def preflight(
    origin: str, method: str = "POST", headers: str = "content-type,idempotency-key"
) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


@pytest_asyncio.fixture
async def open_to_desk(ordering_db: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(ordering_db, cors_allow_origins=f"{DESK}, https://ops.example"))
    async with testing.running(app) as client, testing.rolled_back(app):
        yield client


@pytest.mark.asyncio
class TestAllowedOrigins:
    async def test_preflight_from_an_allowed_origin_is_answered(
        self, open_to_desk: httpx.AsyncClient
    ) -> None:
        response = await open_to_desk.options(ORDERS, headers=preflight(DESK))
        assert response.status_code == 200
        assert response.headers["Access-Control-Allow-Origin"] == DESK
        assert "POST" in response.headers["Access-Control-Allow-Methods"]
        allowed = response.headers["Access-Control-Allow-Headers"].lower()
        assert "idempotency-key" in allowed and "authorization" in allowed
        assert response.headers["X-Correlation-ID"]

    async def test_simple_request_from_an_allowed_origin_may_read_the_answer(
        self, open_to_desk: httpx.AsyncClient
    ) -> None:
        response = await open_to_desk.get(ORDERS, headers={"Origin": DESK})
        assert response.status_code == 200
        assert response.headers["Access-Control-Allow-Origin"] == DESK
        assert "X-Total-Count" in response.headers["Access-Control-Expose-Headers"]

    async def test_preflight_from_another_origin_is_a_tmf_error(
        self, open_to_desk: httpx.AsyncClient
    ) -> None:
        response = await open_to_desk.options(ORDERS, headers=preflight("https://evil.example"))
        assert response.status_code == 400
        assert response.json()["@type"] == "Error"
        assert "origin" in response.json()["message"]
        assert "Access-Control-Allow-Origin" not in response.headers

    async def test_simple_request_from_another_origin_gets_no_allow_origin(
        self, open_to_desk: httpx.AsyncClient
    ) -> None:
        response = await open_to_desk.get(ORDERS, headers={"Origin": "https://evil.example"})
        assert response.status_code == 200  # the browser, not the server, withholds the answer
        assert "Access-Control-Allow-Origin" not in response.headers

    async def test_a_header_outside_the_list_is_refused(self, open_to_desk: httpx.AsyncClient) -> None:
        response = await open_to_desk.options(ORDERS, headers=preflight(DESK, headers="x-secret"))
        assert response.status_code == 400
        assert response.json()["code"] == "badRequest"


@pytest.mark.asyncio
class TestClosedByDefault:
    async def test_preflight_is_not_answered(self, client: httpx.AsyncClient) -> None:
        response = await client.options(ORDERS, headers=preflight(DESK))
        assert response.status_code == 405
        assert response.json()["@type"] == "Error"
        assert "Access-Control-Allow-Origin" not in response.headers

    async def test_simple_request_gets_no_allow_origin(self, client: httpx.AsyncClient) -> None:
        response = await client.get(ORDERS, headers={"Origin": DESK})
        assert response.status_code == 200
        assert "Access-Control-Allow-Origin" not in response.headers


def test_origins_read_as_a_json_list_too(ordering_db: str) -> None:
    settings = make_settings(ordering_db, cors_allow_origins=f'["{DESK}"]')
    assert settings.cors_allow_origins == [DESK]
