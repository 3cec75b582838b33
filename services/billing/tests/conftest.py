from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from billing.app import create_app
from billing.config import Settings
from billing.service import BillingService
from switchboard_dev import testing
from switchboard_kit.store import Store

SERVICE_DIR = Path(__file__).resolve().parents[1]
BASE = "/tmf-api/customerBillManagement/v4"
BILLS = f"{BASE}/customerBill"
ON_DEMAND = f"{BASE}/customerBillOnDemand"
RATES = f"{BASE}/appliedCustomerBillingRate"
ACCOUNTS = f"{BASE}/billingAccount"


@pytest.fixture(scope="session")
def billing_db(pg_server_url: str) -> Iterator[str]:
    """A fresh database built by ``alembic upgrade head`` (not create_all)."""
    url = testing.create_database(pg_server_url, "sb_billing_test")
    testing.migrate(SERVICE_DIR / "alembic.ini", url)
    yield url
    testing.drop_database(url)


def make_settings(db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "kafka_bootstrap_servers": None,
        "worker_enabled": False,
        "hub_enabled": False,
        "public_base_url": "http://billing.example",
        "max_body_bytes": 65536,
        **testing.auth_settings(),
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def app(billing_db: str, settings_overrides: dict[str, Any]) -> FastAPI:
    return create_app(make_settings(billing_db, **settings_overrides))


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # Each test's writes are rolled back at its end (no TRUNCATE, nothing left for the next test).
    async with testing.running(app) as client, testing.rolled_back(app):
        yield client


def store(app: FastAPI) -> Store:
    result: Store = app.state.runtime.store
    return result


def service(app: FastAPI) -> BillingService:
    result: BillingService = app.state.billing_service
    return result


async def run_worker(app: FastAPI) -> int:
    """One pass of the billing scheduler: how many runs succeeded."""
    return int(await app.state.scheduler.tick(store(app)))


async def outbox(app: FastAPI) -> list[dict[str, Any]]:
    return await testing.sql(app, "SELECT topic, key, event_type, payload FROM outbox ORDER BY seq")
