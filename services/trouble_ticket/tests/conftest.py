from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from switchboard_dev import testing
from switchboard_kit.schedule import ManualClock
from trouble_ticket.app import create_app
from trouble_ticket.config import Settings

SERVICE_DIR = Path(__file__).resolve().parents[1]
BASE = "/tmf-api/troubleTicket/v4"
TICKETS = f"{BASE}/troubleTicket"
# A Wednesday morning in office hours (Europe/London is UTC in December).
T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def trouble_ticket_db(pg_server_url: str) -> Iterator[str]:
    """A fresh database built by ``alembic upgrade head`` (not create_all)."""
    url = testing.create_database(pg_server_url, "sb_trouble_ticket_test")
    testing.migrate(SERVICE_DIR / "alembic.ini", url)
    yield url
    testing.drop_database(url)


def make_settings(db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "kafka_bootstrap_servers": None,
        "worker_enabled": False,
        "hub_enabled": False,
        "public_base_url": "http://tickets.example",
        **testing.auth_settings(),
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def app(trouble_ticket_db: str, clock: ManualClock) -> FastAPI:
    return create_app(make_settings(trouble_ticket_db), clock=clock)


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # Each test's writes are rolled back at its end.
    async with testing.running(app) as client, testing.rolled_back(app):
        yield client


async def outbox(app: FastAPI) -> list[dict[str, Any]]:
    """Event envelopes in commit order."""
    return await testing.sql(app, "SELECT topic, key, payload, headers FROM outbox ORDER BY seq")


async def run_timers(app: FastAPI) -> int:
    """One pass of the SLA scheduler at the test clock's time."""
    return int(await app.state.scheduler.tick(app.state.runtime.store))


def ticket(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "description": "No internet since this morning",
        "severity": "Major",
        "ticketType": "connectivity",
        "relatedParty": [{"id": "CUST-1", "role": "customer", "@referredType": "Individual"}],
    }
    body.update(extra)
    return body
