"""The demo tickets `make run` loads: through the public API, in several statuses, once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from switchboard_dev import testing
from switchboard_dev.infra import free_port
from trouble_ticket.app import create_app
from trouble_ticket.seed import SEED, seed

from ..conftest import SERVICE_DIR, TICKETS, make_settings

pytestmark = pytest.mark.asyncio


@pytest.fixture
def app(pg_server_url: str) -> Iterator[FastAPI]:
    url = testing.create_database(pg_server_url, "sb_trouble_ticket_seed")
    testing.migrate(SERVICE_DIR / "alembic.ini", url)
    yield create_app(make_settings(url))
    testing.drop_database(url)


async def test_seed_loads_tickets_in_several_statuses_once(app: FastAPI) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    headers = testing.auth_headers("integration")
    async with testing.serving(app, port):
        await seed(base, headers)
        await seed(base, headers)  # a second `make run` keeps what is there
        async with httpx.AsyncClient(base_url=base, headers=headers) as client:
            listed = (await client.get(TICKETS)).json()
    assert len(listed) == len(SEED)
    statuses = Counter(t["status"] for t in listed)
    assert statuses == Counter(
        {
            "acknowledged": 1,
            "inProgress": 1,
            "pending": 1,
            "held": 1,
            "resolved": 1,
            "closed": 1,
            "rejected": 1,
        }
    )
    assert all(len(t["statusChange"]) >= 1 and t["expectedResolutionDate"] for t in listed)
