from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from ordering.app import create_app
from ordering.config import Settings
from switchboard_dev import testing

SERVICE_DIR = Path(__file__).resolve().parents[1]
BASE = "/tmf-api/productOrderingManagement/v4"


@pytest.fixture(scope="session")
def ordering_db(pg_server_url: str) -> Iterator[str]:
    """A fresh database built by ``alembic upgrade head`` (not create_all)."""
    url = testing.create_database(pg_server_url, "sb_ordering_test")
    testing.migrate(SERVICE_DIR / "alembic.ini", url)
    yield url
    testing.drop_database(url)


def make_settings(db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "kafka_bootstrap_servers": None,
        "worker_enabled": False,
        "hub_enabled": False,
        "public_base_url": "http://orders.example",
        "provisioning_delay_seconds": 0,
        "cancellation_delay_seconds": 0,
        "max_body_bytes": 65536,
        **testing.auth_settings(),  # tokens from the tests' issuer (testing.running sends one)
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def app(ordering_db: str, settings_overrides: dict[str, Any]) -> FastAPI:
    return create_app(make_settings(ordering_db, **settings_overrides))


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # Each test's writes are rolled back at its end (no TRUNCATE, nothing left for the next test).
    async with testing.running(app) as client, testing.rolled_back(app):
        yield client


async def outbox(app: FastAPI) -> list[dict[str, Any]]:
    """Event envelopes in commit order."""
    return await testing.sql(app, "SELECT topic, key, payload, headers FROM outbox ORDER BY seq")


async def run_worker(app: FastAPI) -> int:
    """One pass of the fulfilment scheduler: how many due rows advanced."""
    return int(await app.state.scheduler.tick(app.state.runtime.store))
