from __future__ import annotations

import httpx
import pytest

from ..conftest import BASE

pytestmark = pytest.mark.asyncio

HUB = f"{BASE}/hub"


@pytest.mark.parametrize(
    "query",
    [
        "eventType=TroubleTicketStatusChangeEvent",
        "eventType=TroubleTicketResolvedEvent,TroubleTicketSlaBreachEvent",
        "eventType=TroubleTicketSlaWarningEvent&event.troubleTicket.severity=Critical",
    ],
)
async def test_subscribe_to_ticket_and_sla_events(client: httpx.AsyncClient, query: str) -> None:
    body = {"callback": "http://listener.example/hooks", "query": query}
    created = await client.post(HUB, json=body)
    assert created.status_code == 201, created.text
    sub = created.json()
    assert (await client.get(f"{HUB}/{sub['id']}")).json() == sub
    assert (await client.delete(f"{HUB}/{sub['id']}")).status_code == 204


async def test_an_event_the_service_does_not_emit_is_400(client: httpx.AsyncClient) -> None:
    body = {"callback": "http://listener.example/hooks", "query": "eventType=ProductOrderCreateEvent"}
    assert (await client.post(HUB, json=body)).status_code == 400
