from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from payment.app import create_app
from payment.config import Settings
from payment.gateway import SimulatedGateway
from switchboard_dev import testing

SERVICE_DIR = Path(__file__).resolve().parents[1]
BASE = "/tmf-api/paymentManagement/v4"
PAYMENTS = f"{BASE}/payment"
REFUNDS = f"{BASE}/refund"


def migrated_database(pg_server_url: str, prefix: str) -> str:
    url = testing.create_database(pg_server_url, prefix)
    testing.migrate(SERVICE_DIR / "alembic.ini", url)
    return url


@pytest.fixture(scope="session")
def payment_db(pg_server_url: str) -> Iterator[str]:
    """A fresh database built by ``alembic upgrade head`` (not create_all)."""
    url = migrated_database(pg_server_url, "sb_payment_test")
    yield url
    testing.drop_database(url)


def make_settings(db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "kafka_bootstrap_servers": None,
        "worker_enabled": False,
        "hub_enabled": False,
        "public_base_url": "http://payments.example",
        "max_body_bytes": 65536,
        "gateway_timeout_seconds": 2.0,
        **testing.auth_settings(),
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def gateway() -> SimulatedGateway:
    return SimulatedGateway()


@pytest.fixture
def app(payment_db: str, settings_overrides: dict[str, Any], gateway: SimulatedGateway) -> FastAPI:
    return create_app(make_settings(payment_db, **settings_overrides), gateway=gateway)


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # Each test's writes are rolled back at its end.
    async with testing.running(app) as client, testing.rolled_back(app):
        yield client


async def outbox(app: FastAPI) -> list[dict[str, Any]]:
    """Event envelopes in commit order."""
    return await testing.sql(app, "SELECT topic, key, event_type, payload FROM outbox ORDER BY seq")


async def count(app: FastAPI, table: str) -> int:
    return int((await testing.sql(app, f"SELECT count(*) AS n FROM {table}"))[0]["n"])


def assert_tmf_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["@type"] == "Error"
    assert body["status"] == str(status)
    assert body["code"] and body["reason"]
    return dict(body)
