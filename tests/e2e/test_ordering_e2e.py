"""The suite as `make run` starts it (embedded PostgreSQL and broker, one process per service),
driven over HTTP, with events read from the real broker and hub callbacks received by a real listener."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from ordering.samples import broadband_order
from switchboard_dev.launcher import Suite
from tests.listener import Listener
from tests.scratch import scratch_dir

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


async def wait_for(predicate: Any, what: str, limit_s: float = 30.0) -> Any:
    async with asyncio.timeout(limit_s):
        while not (result := await predicate()):
            await asyncio.sleep(0.2)
    assert result, what
    return result


async def read_topic(bootstrap: str, topic: str, key: str, count: int) -> list[Any]:
    """A fresh consumer reads the topic from the start and keeps the records of one resource."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=f"e2e-{uuid.uuid4()}"
    )
    await consumer.start()
    found: list[Any] = []
    try:
        async with asyncio.timeout(30):
            while len(found) < count:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    found.extend(r for r in records if r.key == key.encode())
    finally:
        await consumer.stop()
    return found


async def test_order_lifecycle_reaches_kafka_and_hub_listeners(monkeypatch: pytest.MonkeyPatch) -> None:
    # The embedded path: no DATABASE_URL, so the launcher starts PostgreSQL from the wheel.
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    # Removed when the test ends; a failed run keeps only its logs (tests/scratch.py).
    env = {
        "ORDERING_PROVISIONING_DELAY_SECONDS": "0.5",
        "ORDERING_HUB_POLL_INTERVAL": "0.1",
        "ORDERING_WORKER_POLL_INTERVAL": "0.1",
    }
    listener = Listener(failures=1)
    with scratch_dir("switchboard-e2e-") as data_dir:
        async with Suite.ephemeral(data_dir, ["ordering"], env=env) as suite, listener.serve():
            assert suite.postgres is not None and suite.broker is not None
            api = suite.api_urls["ordering"]
            # The suite's local issuer signed this token (make run's is kept in .data/auth).
            async with httpx.AsyncClient(timeout=10, headers=suite.auth_headers("integration")) as client:
                ready = await client.get(suite.urls["ordering"] + "/health/ready")
                assert ready.status_code == 200
                assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}

                everything = (
                    await client.post(f"{api}/hub", json={"callback": listener.callback("all")})
                ).json()
                only_done = await client.post(
                    f"{api}/hub",
                    json={
                        "callback": listener.callback("done"),
                        "query": "eventType=ProductOrderStateChangeEvent&event.productOrder.state=completed",
                    },
                )
                assert only_done.status_code == 201
                assert only_done.headers["Location"].endswith(f"/hub/{only_done.json()['id']}")

                created = await client.post(
                    f"{api}/productOrder",
                    json=broadband_order("CUST-E2E"),
                    headers={"X-Correlation-ID": "e2e-corr-1"},
                )
                assert created.status_code == 201
                order = created.json()

                async def completed() -> bool:
                    return (await client.get(f"{api}/productOrder/{order['id']}")).json()[
                        "state"
                    ] == "completed"

                await wait_for(completed, "order completed by the fulfilment worker")

                records = await read_topic(suite.bootstrap or "", "tmf622.productOrder", order["id"], 3)
                envelopes = [orjson.loads(r.value) for r in records]
                assert [(e["eventType"], e["event"]["productOrder"]["state"]) for e in envelopes] == [
                    ("ProductOrderCreateEvent", "acknowledged"),
                    ("ProductOrderStateChangeEvent", "inProgress"),
                    ("ProductOrderStateChangeEvent", "completed"),
                ]
                for record, envelope in zip(records, envelopes, strict=True):
                    assert dict(record.headers) == {
                        "eventType": envelope["eventType"].encode(),
                        "correlationId": b"e2e-corr-1",
                    }
                assert envelopes[-1]["correlationId"] == "e2e-corr-1"

                expected_all = {
                    (e["eventType"][0].lower() + e["eventType"][1:], e["eventId"]) for e in envelopes
                }

                async def all_delivered() -> bool:
                    return expected_all <= set(listener.delivered("all")) and bool(listener.delivered("done"))

                await wait_for(
                    all_delivered, "every event delivered to the listener despite a failed attempt"
                )
                assert any(status >= 500 for *_, status in listener.calls), (
                    "the first delivery failed and was retried"
                )
                mine = {
                    (n, i) for n, i in listener.delivered("all") if i in {e["eventId"] for e in envelopes}
                }
                assert mine == expected_all
                assert len(listener.delivered("all")) == len(set(listener.delivered("all"))), (
                    "no duplicate deliveries"
                )
                assert listener.delivered("done") == [
                    ("productOrderStateChangeEvent", envelopes[-1]["eventId"])
                ]

                assert (await client.get(f"{api}/hub/{everything['id']}")).json()[
                    "callback"
                ] == listener.callback("all")
                assert (await client.delete(f"{api}/hub/{everything['id']}")).status_code == 204
                assert (await client.get(f"{api}/hub/{everything['id']}")).status_code == 404
    assert not data_dir.exists()
