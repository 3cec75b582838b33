"""A dead listener is visible: each failed hub delivery is logged, and ``GET /hub/{id}/deliveryStatus``
reports attempts, the last attempt and error, and the next try, through HTTP on real PostgreSQL with
a real listener on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from switchboard_dev import testing
from switchboard_dev.infra import free_port
from switchboard_kit import db
from switchboard_kit.app import create_service_app
from switchboard_kit.settings import ServiceSettings

pytestmark = pytest.mark.asyncio

BASE = "/tmf-api/thingManagement/v1"
HUB = f"{BASE}/hub"
MAX_ATTEMPTS = 3

metadata = db.new_metadata()
kit = db.kit_tables(metadata)


@pytest.fixture(scope="module")
def kit_db(pg_server_url: str) -> Iterator[str]:
    with testing.database_with(pg_server_url, metadata, "sb_hub_status") as url:
        yield url


class Listener:
    """A real HTTP listener answering ``status`` to every delivery."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.calls: list[str] = []
        self.port = free_port()

        async def listener(request: Request) -> Response:
            self.calls.append(request.path_params["event"])
            return Response(status_code=self.status)

        self.app = Starlette(routes=[Route("/cb/listener/{event}", listener, methods=["POST"])])
        self.callback = f"http://127.0.0.1:{self.port}/cb"

    def serve(self) -> contextlib.AbstractAsyncContextManager[None]:
        return testing.serving(self.app, self.port)


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def make_app(url: str, backoff: float) -> FastAPI:
    settings = ServiceSettings(
        database_url=url,
        kafka_bootstrap_servers=None,
        hub_enabled=True,
        hub_poll_interval=0.05,
        hub_max_attempts=MAX_ATTEMPTS,
        hub_backoff_base=backoff,
        hub_backoff_max=backoff,
        retention_interval=0,
        public_base_url="http://things.example",
        **testing.auth_settings(),
    )
    return create_service_app(
        name="thing",
        title="Things",
        version="1",
        settings=settings,
        base_path=BASE,
        metadata_tables=kit,
        resources=[],
        topics=[],
    )


@contextlib.asynccontextmanager
async def hub_logs() -> AsyncIterator[Collect]:
    handler, logger = Collect(), logging.getLogger("switchboard.hub")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


async def subscribe_with_deliveries(app: FastAPI, client: httpx.AsyncClient, callback: str, n: int) -> str:
    """A subscription registered through the API, and ``n`` deliveries as the relay writes them."""
    created = await client.post(HUB, json={"callback": callback})
    assert created.status_code == 201, created.text
    sub = str(created.json()["id"])
    async with app.state.runtime.store.unit_of_work() as uow:
        for _ in range(n):
            event_id = uuid.uuid4()
            payload = {"eventId": str(event_id), "eventType": "ThingCreateEvent", "event": {"thing": {}}}
            await uow.execute(
                insert(kit.hub_delivery).values(
                    subscription_id=sub, event_id=event_id, event_type="ThingCreateEvent", payload=payload
                )
            )
    return sub


async def status_until(client: httpx.AsyncClient, sub: str, done: Any, limit_s: float = 20) -> dict[str, Any]:
    async with asyncio.timeout(limit_s):
        while True:
            response = await client.get(f"{HUB}/{sub}/deliveryStatus")
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            if done(body):
                return body
            await asyncio.sleep(0.02)


class TestDeliveryStatus:
    async def test_a_failing_listener_shows_its_attempts_errors_and_next_try(self, kit_db: str) -> None:
        listener = Listener(status=500)
        app = make_app(kit_db, backoff=0.5)
        async with listener.serve(), hub_logs() as logs, testing.running(app) as client:
            sub = await subscribe_with_deliveries(app, client, listener.callback, 2)

            retrying = await status_until(client, sub, lambda b: b["attempts"] >= 2)
            assert retrying["pending"] == 2 and retrying["delivered"] == 0 and retrying["failed"] == 0
            assert retrying["lastError"] == "HTTP 500"
            last_attempt = datetime.fromisoformat(retrying["lastAttempt"])
            assert datetime.fromisoformat(retrying["lastErrorAt"]) == last_attempt
            assert datetime.fromisoformat(retrying["nextAttempt"]) > last_attempt
            assert "lastDelivered" not in retrying

            abandoned = await status_until(client, sub, lambda b: b["failed"] == 2)
        assert abandoned == {
            "id": sub,
            "callback": listener.callback,
            "pending": 0,
            "delivered": 0,
            "failed": 2,
            "attempts": 2 * MAX_ATTEMPTS,
            "lastAttempt": abandoned["lastAttempt"],
            "lastError": "HTTP 500",
            "lastErrorAt": abandoned["lastAttempt"],
            "@type": "HubDeliveryStatus",
        }
        assert len(listener.calls) == 2 * MAX_ATTEMPTS
        messages = [r.getMessage() for r in logs.records if getattr(r, "subscription", None) == sub]
        # A log line at each failure, not only when a delivery is abandoned.
        assert messages.count("hub delivery failed, will retry") == 2 * (MAX_ATTEMPTS - 1)
        assert messages.count("hub delivery abandoned") == 2
        failure = next(r for r in logs.records if r.getMessage() == "hub delivery failed, will retry")
        assert failure.levelno == logging.WARNING
        assert (failure.__dict__["error"], failure.__dict__["attempts"]) == ("HTTP 500", 1)
        assert failure.__dict__["nextAttempt"]

    async def test_a_working_listener_shows_its_deliveries(self, kit_db: str) -> None:
        listener = Listener(status=204)
        app = make_app(kit_db, backoff=0.05)
        async with listener.serve(), hub_logs() as logs, testing.running(app) as client:
            sub = await subscribe_with_deliveries(app, client, listener.callback, 3)
            status = await status_until(client, sub, lambda b: b["delivered"] == 3)
        assert (status["pending"], status["failed"], status["attempts"]) == (0, 0, 3)
        delivered, attempted = (datetime.fromisoformat(status[k]) for k in ("lastDelivered", "lastAttempt"))
        assert delivered >= attempted
        assert "lastError" not in status and "nextAttempt" not in status
        assert not [r for r in logs.records if getattr(r, "subscription", None) == sub]

    async def test_a_new_subscription_has_nothing_to_report(self, kit_db: str) -> None:
        app = make_app(kit_db, backoff=0.05)
        async with testing.running(app) as client:
            created = await client.post(HUB, json={"callback": "http://listener.example/hooks"})
            status = await client.get(f"{HUB}/{created.json()['id']}/deliveryStatus")
            assert status.json() == {
                "id": created.json()["id"],
                "callback": "http://listener.example/hooks",
                "pending": 0,
                "delivered": 0,
                "failed": 0,
                "attempts": 0,
                "@type": "HubDeliveryStatus",
            }
            missing = await client.get(f"{HUB}/nope/deliveryStatus")
            assert missing.status_code == 404 and missing.json()["@type"] == "Error"
